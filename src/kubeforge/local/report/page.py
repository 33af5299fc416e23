"""The run report's page: the run's state, its task graph and table, then one section per task.

No script at all: a Content-Security-Policy meta allows inline styles and data: images only, so
even markup slipped past the escaping could not run or fetch anything.
"""

from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

from kubeforge.local.journal import RunRecord
from kubeforge.local.report.artifacts import Limits, artifact_html
from kubeforge.local.report.graph import TaskNode, graph_svg, task_anchor
from kubeforge.local.report.style import CSS

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


@dataclass(frozen=True)
class RunView:
    """What the page shows: the run's record, its task graph, its error, and the run's output folder."""

    record: RunRecord
    nodes: list[TaskNode]
    error: str
    run_dir: Path

    def state(self, node: TaskNode) -> str:
        """ran, cached, resumed, failed, running, interrupted, imported, skipped, not run or pending."""
        timing = self.record.timeline.get(node.name, {})
        if timing.get("failed"):
            return "failed"
        if node.name in self.record.tasks:
            return self.record.tasks[node.name]["how"]
        if timing:
            return "running" if self.record.state == "running" else "interrupted"
        if node.importer and (self.record.tasks or self.record.state == "succeeded"):
            return "imported"
        return {"succeeded": "skipped", "failed": "not run"}.get(self.record.state, "pending")

    def seconds(self, name: str) -> float | None:
        """How long task `name` (or the run, for "") took, when both ends were recorded."""
        timing = self.record.timeline.get(name, {})
        started, finished = timing.get("started"), timing.get("finished")
        return float(finished) - float(started) if started is not None and finished is not None else None

    def folder(self, node: TaskNode) -> Path:
        """Where the task's outputs are: this run's folder, or the earlier run's for a cached task."""
        recorded = self.record.tasks.get(node.name)
        return Path(recorded["folder"]) if recorded else self.run_dir / node.name


def report_page(view: RunView, limits: Limits) -> str:
    """The whole report as one HTML document."""
    record = view.record
    labels = {node.name: (_css_state(view.state(node)), _caption(view, node)) for node in view.nodes}
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(record.pipeline)} run report: {escape(record.state)}</title><style>{CSS}</style></head>
<body><a class="skip" href="#tasks-title">Skip to the tasks</a>
{_header(view)}
<main>{_error(view.error)}
<section aria-labelledby="graph-title"><h2 id="graph-title">Task graph</h2>
<div class="scroll">{graph_svg(view.nodes, labels)}</div>
{_task_table(view)}</section>
{_arguments(record.arguments)}
<section aria-labelledby="tasks-title"><h2 id="tasks-title">Tasks</h2>
{"".join(_task_section(view, node, limits) for node in view.nodes)}</section></main></body></html>
"""


def _header(view: RunView) -> str:
    record = view.record
    counts = {state: sum(view.state(node) == state for node in view.nodes) for state in ("ran", "cached", "failed")}
    started = record.timeline.get("", {}).get("started")
    when = "-"
    if started:
        when = datetime.datetime.fromtimestamp(float(started), datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    badge = f'<span class="badge state-{_css_state(record.state)}">{escape(record.state)}</span>'
    return (
        f"<header><h1>{escape(record.pipeline)} {badge}</h1>"
        f'<p class="run">Run <code>{escape(record.name)}</code>, started {escape(when)}, '
        f"took {_duration(view.seconds(''))}; {len(view.nodes)} tasks: {counts['ran']} ran, "
        f"{counts['cached']} from the cache, {counts['failed']} failed.</p></header>"
    )


def _error(error: str) -> str:
    if not error:
        return ""
    return (
        '<section class="error" aria-labelledby="error-title"><h2 id="error-title">Why the run failed</h2>'
        f"<pre>{escape(error)}</pre></section>"
    )


def _task_table(view: RunView) -> str:
    rows = "".join(
        f'<tr><th scope="row"><a href="#{task_anchor(node.name)}">{escape(node.display)}</a></th>'
        f"<td>{escape(view.state(node))}</td><td>{_duration(view.seconds(node.name))}</td>"
        f"<td>{'yes' if view.state(node) in ('cached', 'resumed') else 'no'}</td>"
        f"<td>{escape(', '.join(_display(view, name) for name in node.depends)) or '-'}</td></tr>"
        for node in view.nodes
    )
    return (
        '<table class="tasks"><caption>Tasks in the order they can run: state, duration, cache hit, what each waits for'
        '</caption><thead><tr><th scope="col">task</th><th scope="col">state</th><th scope="col">duration</th>'
        f'<th scope="col">cache hit</th><th scope="col">after</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def _task_section(view: RunView, node: TaskNode, limits: Limits) -> str:
    state = view.state(node)
    folder = view.folder(node)
    where = ""
    if state in ("cached", "resumed") and folder.parent != view.run_dir:
        where = f" (outputs of the earlier run <code>{escape(folder.parent.name)}</code>)"
    group = f" in <code>{escape(node.group)}</code>" if node.group else ""
    parts = [
        f'<section class="task" id="{task_anchor(node.name)}" aria-labelledby="{task_anchor(node.name)}-title">'
        f'<h3 id="{task_anchor(node.name)}-title">{escape(node.display)} '
        f'<span class="badge state-{_css_state(state)}">{escape(state)}</span></h3>'
        f"<p>{_duration(view.seconds(node.name))}{group}{where}</p>"
    ]
    if state == "failed" and view.error:
        parts.append(f'<div class="error"><p><strong>Error</strong></p><pre>{escape(view.error)}</pre></div>')
    if not node.importer and state not in ("skipped", "not run", "pending"):
        parts.append(_outputs(node, folder, view.run_dir, limits))
    parts.append("</section>")
    return "".join(parts)


def _outputs(node: TaskNode, folder: Path, base: Path, limits: Limits) -> str:
    try:
        written = json.loads((folder / "executor_output.json").read_text()).get("artifacts", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        link = escape(os.path.relpath(folder, base))
        return f'<p class="note">no outputs recorded (<a href="{link}">task folder</a>)</p>' if folder.exists() else ""
    parts = []
    for name, entry in sorted(written.items()) if isinstance(written, dict) else ():
        for artifact in entry.get("artifacts", []) if isinstance(entry, dict) else ():
            if isinstance(artifact, dict):
                metadata = artifact.get("metadata")
                metadata = metadata if isinstance(metadata, dict) else {}
                schema = node.outputs.get(name, "")
                parts.append(artifact_html(name, schema, str(artifact.get("uri", "")), metadata, base, limits))
    return "".join(parts) or '<p class="note">no output artifacts</p>'


def _arguments(arguments: dict[str, Any]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{escape(str(key))}</th><td><code>{escape(str(value))}</code></td></tr>'
        for key, value in arguments.items()
    )
    body = f"<table><tbody>{rows}</tbody></table>" if rows else "<p>none (the defaults)</p>"
    return f'<section aria-labelledby="arguments-title"><h2 id="arguments-title">Arguments</h2>{body}</section>'


def _caption(view: RunView, node: TaskNode) -> str:
    seconds = view.seconds(node.name)
    return view.state(node) if seconds is None else f"{view.state(node)} · {_duration(seconds)}"


def _display(view: RunView, name: str) -> str:
    return next((node.display for node in view.nodes if node.name == name), name)


def _css_state(state: str) -> str:
    return state.replace(" ", "-")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


__all__ = ["POLICY", "RunView", "report_page"]
