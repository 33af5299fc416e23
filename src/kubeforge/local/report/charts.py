"""Charts the run report draws itself as inline SVG, each with a text alternative (a summary and a table)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

SIZE, MARGIN = 260, 36


def roc_svg(name: str, points: Sequence[Mapping[str, Any]], max_rows: int) -> str:
    """The ROC curve of kfp's confidenceMetrics (recall against false positive rate), its AUC, and the points."""
    curve = sorted(
        (
            _number(point.get("falsePositiveRate")),
            _number(point.get("recall")),
            _number(point.get("confidenceThreshold")),
        )
        for point in points
    )
    area = sum((x2 - x1) * (y1 + y2) / 2 for (x1, y1, _), (x2, y2, _) in itertools.pairwise(curve))
    summary = f"{name}: ROC curve through {len(curve)} points, area under the curve {area:.3f}"
    plot = " ".join(f"{MARGIN + x * SIZE:.1f},{MARGIN + (1 - y) * SIZE:.1f}" for x, y, _ in curve)
    end = MARGIN + SIZE
    svg = (
        f'<svg class="chart" width="{end + 12}" height="{end + 30}" viewBox="0 0 {end + 12} {end + 30}" role="img" '
        f'aria-label="{escape(summary)}"><title>{escape(summary)}</title>'
        f'<rect x="{MARGIN}" y="{MARGIN}" width="{SIZE}" height="{SIZE}" class="frame"/>'
        f'<line x1="{MARGIN}" y1="{end}" x2="{end}" y2="{MARGIN}" class="chance"/>'
        f'<polyline points="{plot}" class="curve"/>'
        f'<text x="{MARGIN}" y="{end + 20}">0</text><text x="{end - 8}" y="{end + 20}">1</text>'
        f'<text x="{MARGIN + SIZE / 2 - 50}" y="{end + 20}">false positive rate</text>'
        f'<text x="4" y="{MARGIN - 10}">recall (true positive rate)</text></svg>'
    )
    rows = "".join(
        f"<tr><td>{threshold:.4g}</td><td>{x:.4g}</td><td>{y:.4g}</td></tr>" for x, y, threshold in curve[:max_rows]
    )
    table = (
        f"<details><summary>ROC points as a table ({len(curve)} rows)</summary><table><thead><tr>"
        '<th scope="col">threshold</th><th scope="col">false positive rate</th><th scope="col">recall</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></details>"
    )
    return f'<figure class="roc">{svg}<figcaption>{escape(summary)}</figcaption>{table}</figure>'


def _number(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return min(max(number, 0.0), 1.0) if number == number else 0.0


__all__ = ["roc_svg"]
