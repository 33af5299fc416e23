"""One task's output artifacts as HTML fragments of the run report.

Artifacts are untrusted input: every name, value and text is escaped; Markdown is rendered with raw
HTML off; an HTML artifact is shown in an iframe's `srcdoc` with an empty `sandbox` (no scripts, no
forms, no navigation of the report); images are inlined only when their bytes are PNG, JPEG or GIF.
Anything over its size cap is linked, not inlined. Links are relative, so the report and the run's
folder can move together.
"""

from __future__ import annotations

import base64
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markdown_it import MarkdownIt

from kubeforge.local.report.charts import roc_svg

_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")
_IMAGE_TYPES = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif"}


@dataclass(frozen=True)
class Limits:
    """Caps on what the report inlines; bigger artifacts are linked."""

    image_bytes: int = 2 * 1024 * 1024
    text_bytes: int = 512 * 1024
    files_per_artifact: int = 50
    table_rows: int = 200


def artifact_html(name: str, schema: str, uri: str, metadata: Mapping[str, Any], base: Path, limits: Limits) -> str:
    """One artifact: its name and type, a link, its metadata (metrics, confusion matrix, ROC) and its files."""
    kind = schema.removeprefix("system.") or "Artifact"
    parts = [f'<div class="artifact"><h4>{escape(name)} <span class="kind">{escape(kind)}</span></h4>']
    path = Path(uri) if uri and "://" not in uri else None
    if path is None:
        parts.append(f"<p><code>{escape(uri)}</code></p>")
    elif path.is_dir():
        parts.append(f"<p>{_link(path, base, f'{name}/ (folder)')}</p>")
    if kind == "ClassificationMetrics":
        parts.append(_classification_html(name, metadata, limits))
    elif metadata:
        parts.append(_metadata_table(name, metadata))
    if path is not None:
        parts.append(_files_html(name, kind, path, base, limits))
    parts.append("</div>")
    return "".join(parts)


def _files_html(name: str, kind: str, path: Path, base: Path, limits: Limits) -> str:
    if path.is_dir():
        files = sorted(child for child in path.rglob("*") if child.is_file())
        shown = [_file_html(child, kind, base, limits, label=f"{name}/{child.relative_to(path)}") for child in files]
        more = len(files) - limits.files_per_artifact
        tail = (
            f'<p class="note">and {more} more file(s): {_link(path, base, "open the folder")}</p>' if more > 0 else ""
        )
        return "".join(shown[: limits.files_per_artifact]) + tail
    if path.is_file():
        return _file_html(path, kind, base, limits, label=name)
    if kind in ("Metrics", "ClassificationMetrics"):
        return ""  # kfp keeps metrics in the metadata; the file is optional
    return '<p class="note">missing: the task recorded this artifact but its file is not there</p>'


def _file_html(path: Path, kind: str, base: Path, limits: Limits, label: str) -> str:
    if path.is_symlink():  # a task's link may point anywhere on this machine: named, never read
        return f'<p class="file">{_link(path, base, label)} <span class="size">(a link; not shown here)</span></p>'
    size = path.stat().st_size
    head = f'<p class="file">{_link(path, base, label)} <span class="size">({_size(size)})</span></p>'
    with path.open("rb") as handle:
        start = handle.read(16)
    mime = next((mime for magic, mime in _IMAGE_TYPES.items() if start.startswith(magic)), None)
    suffix = path.suffix.lower()
    lowered = start.lower().lstrip()
    if mime is not None:
        return head + _capped(size, limits.image_bytes, path, base, lambda: _image(path, mime, label))
    if kind == "HTML" or suffix in (".html", ".htm") or lowered.startswith((b"<!doctype html", b"<html")):
        return head + _capped(size, limits.text_bytes, path, base, lambda: _sandboxed(path, label))
    if kind == "Markdown" or suffix == ".md":
        return head + _capped(size, limits.text_bytes, path, base, lambda: _markdown(path))
    if suffix == ".jsonl":
        return head + _capped(size, limits.text_bytes, path, base, lambda: _json_lines_table(path, label, limits))
    return head


def _capped(size: int, cap: int, path: Path, base: Path, render: Any) -> str:
    if size > cap:
        link = _link(path, base, "open it")
        return f'<p class="note">too large to show here ({_size(size)}, over {_size(cap)}): {link}</p>'
    return str(render())


def _image(path: Path, mime: str, label: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    alt = f"{_words(path.stem)} (image {path.name})"
    image = f'<img src="data:{mime};base64,{data}" alt="{escape(alt)}">'
    return f"<figure>{image}<figcaption>{escape(label)}</figcaption></figure>"


def _sandboxed(path: Path, label: str) -> str:
    text = path.read_text(errors="replace")
    document = escape(text, quote=True)
    return f'<iframe class="html-artifact" sandbox="" title="{escape(label)}" srcdoc="{document}"></iframe>'


def _markdown(path: Path) -> str:
    return f'<div class="markdown">{_MARKDOWN.render(path.read_text(errors="replace"))}</div>'


def _json_lines_table(path: Path, label: str, limits: Limits) -> str:
    """A JSON Lines file of flat records (a training history) as a table: the text beside its chart."""
    rows = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f'<th scope="col">{escape(str(column))}</th>' for column in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_value(row.get(column, '')))}</td>" for column in columns) + "</tr>"
        for row in rows[: limits.table_rows]
    )
    more = f"<p class='note'>first {limits.table_rows} of {len(rows)} rows</p>" if len(rows) > limits.table_rows else ""
    return (
        f"<details><summary>{escape(label)} as a table ({len(rows)} rows)</summary>"
        f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{more}</details>'
    )


def _metadata_table(name: str, metadata: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th scope="row">{escape(str(key))}</th><td>{escape(_value(value))}</td></tr>'
        for key, value in metadata.items()
    )
    return f'<table class="metrics"><caption>{escape(name)}</caption><tbody>{rows}</tbody></table>'


def _classification_html(name: str, metadata: Mapping[str, Any], limits: Limits) -> str:
    parts = []
    matrix = metadata.get("confusionMatrix")
    if isinstance(matrix, Mapping):
        labels = [
            str(spec.get("displayName", "")) for spec in matrix.get("annotationSpecs", []) if isinstance(spec, Mapping)
        ]
        rows = [row.get("row", []) for row in matrix.get("rows", []) if isinstance(row, Mapping)]
        head = "".join(f'<th scope="col">{escape(label)}</th>' for label in labels)
        body = "".join(
            f'<tr><th scope="row">{escape(labels[index] if index < len(labels) else str(index))}</th>'
            + "".join(f"<td>{escape(_value(count))}</td>" for count in row)
            + "</tr>"
            for index, row in enumerate(rows[: limits.table_rows])
        )
        parts.append(
            f'<table class="confusion"><caption>{escape(name)}: confusion matrix (rows: true class, columns: predicted)'
            f'</caption><thead><tr><th scope="col">true \\ predicted</th>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
        )
    points = [point for point in metadata.get("confidenceMetrics", []) if isinstance(point, Mapping)]
    if points:
        parts.append(roc_svg(name, points, limits.table_rows))
    return "".join(parts)


def _link(path: Path, base: Path, text: str) -> str:
    relative = os.path.relpath(path, base)
    return f'<a href="{escape(quote(relative, safe="/"))}">{escape(text)}</a>'


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, str | int | bool):
        return str(value)
    return json.dumps(value, default=str)[:2000]


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    return f"{size / 1024:.1f} KiB" if size < 1024 * 1024 else f"{size / 1024 / 1024:.1f} MiB"


def _words(stem: str) -> str:
    return stem.replace("_", " ").replace("-", " ")


__all__ = ["Limits", "artifact_html"]
