"""The validation report as one self-contained HTML page."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import ValidationResult


def render_html(result: ValidationResult, data: str, reference: str) -> str:
    """Verdict, constraint findings and drift results as an HTML document (no external assets)."""
    verdict = "PASSED" if result.passed else "FAILED"
    colour = "#1a7f37" if result.passed else "#cf222e"
    rows = "".join(
        f"<tr class='{_status(f.passed)}'><td>{_e(f.column)}</td><td>{_e(f.check)}</td>"
        f"<td>{_status(f.passed)}</td><td>{_e(f.detail)}</td></tr>"
        for f in result.findings
    )
    drift = "".join(
        f"<tr class='{_status(d.passed)}'><td>{_e(d.column)}</td><td>{d.method}</td>"
        f"<td>{d.statistic:.4f}</td><td>{_status(d.passed)}</td><td>{_e(d.detail)}</td></tr>"
        for d in result.drift
    )
    reference_line = f"<p>Reference: <code>{_e(reference)}</code></p>" if reference else ""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Data validation</title><style>"
        "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
        "padding:4px 8px}tr.fail{background:#ffebe9}</style></head><body>"
        f"<h1>Data validation: <span style='color:{colour}'>{verdict}</span></h1>"
        f"<p>Data: <code>{_e(data)}</code>, {result.rows} rows</p>{reference_line}"
        "<h2>Constraints</h2><table><tr><th>column</th><th>check</th><th>result</th><th>detail</th></tr>"
        f"{rows or '<tr><td colspan=4>no constraints given</td></tr>'}</table>"
        "<h2>Drift</h2><table><tr><th>column</th><th>method</th><th>statistic</th><th>result</th><th>detail</th></tr>"
        f"{drift or '<tr><td colspan=5>no reference given</td></tr>'}</table></body></html>\n"
    )


def _status(passed: bool) -> str:
    return "pass" if passed else "fail"


def _e(text: str) -> str:
    return html.escape(str(text))


__all__ = ["render_html"]
