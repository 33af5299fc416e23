"""The run report's stylesheet, inlined into the page (dark text on light fills: WCAG AA contrast)."""

CSS = """
:root { color-scheme: light; --ink: #1a1a1a; --muted: #4a4a4a; --line: #c8c8c8; --accent: #0b4f8a; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 84rem; padding: 1rem; font: 16px/1.45 system-ui, sans-serif; color: var(--ink); }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
h2 { font-size: 1.25rem; margin: 1.75rem 0 .5rem; border-bottom: 2px solid var(--line); }
h3 { font-size: 1.1rem; margin: 0 0 .25rem; }
h4 { font-size: 1rem; margin: 1rem 0 .25rem; }
a { color: var(--accent); }
a:focus-visible { outline: 3px solid #e8a200; outline-offset: 2px; }
.skip { position: absolute; left: -999px; }
.skip:focus { left: 1rem; top: 1rem; background: #fff; padding: .5rem; }
.run, .note, .size, figcaption { color: var(--muted); }
.kind { font-weight: normal; color: var(--muted); font-size: .9rem; }
.badge { display: inline-block; font-size: .85rem; font-weight: 600; padding: .05rem .5rem; border-radius: 1rem;
  border: 1px solid var(--muted); vertical-align: middle; }
.state-succeeded, .state-ran { background: #dcf5e3; } .state-cached, .state-resumed { background: #dce9fb; }
.state-failed, .state-interrupted { background: #fde2e2; border-color: #8a1010; }
.state-running { background: #fff2c6; }
.state-skipped, .state-not-run, .state-pending, .state-imported { background: #eeeeee; }
.scroll { overflow-x: auto; }
svg.graph .node { stroke: #4a4a4a; stroke-width: 1.5; fill: #eeeeee; }
svg.graph .state-ran { fill: #dcf5e3; } svg.graph .state-cached, svg.graph .state-resumed { fill: #dce9fb; }
svg.graph .state-failed, svg.graph .state-interrupted { fill: #fde2e2; } svg.graph .state-running { fill: #fff2c6; }
svg.graph .state-failed { stroke: #8a1010; stroke-width: 3; }
svg.graph .edge { fill: none; stroke: #4a4a4a; stroke-width: 1.5; }
svg.graph .arrowhead { fill: #4a4a4a; }
svg.graph text { font: 13px system-ui, sans-serif; fill: #1a1a1a; }
svg.graph .node-name { font-weight: 600; }
svg.graph a:focus-visible rect { stroke: #e8a200; stroke-width: 4; }
svg.chart .frame { fill: #fff; stroke: #4a4a4a; } svg.chart .chance { stroke: #888; stroke-dasharray: 4 4; }
svg.chart .curve { fill: none; stroke: #0b4f8a; stroke-width: 2.5; }
svg.chart text { font: 12px system-ui, sans-serif; }
table { border-collapse: collapse; margin: .5rem 0; }
caption { text-align: left; color: var(--muted); padding: .25rem 0; }
th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { background: #f0f0f0; }
section.task { border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1rem; margin: 1rem 0; }
.artifact { border-top: 1px dashed var(--line); margin-top: .5rem; }
.error { background: #fde2e2; border-left: 4px solid #8a1010; padding: .25rem .75rem; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; }
img { max-width: 100%; height: auto; border: 1px solid var(--line); }
iframe.html-artifact { width: 100%; height: 28rem; border: 1px solid var(--line); }
.markdown { overflow-x: auto; }
details { margin: .5rem 0; } summary { cursor: pointer; color: var(--accent); }
"""
