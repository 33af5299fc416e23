"""The run report of a local run: one self-contained `report.html` beside the run's outputs.

`publish_report` runs when a local run ends, succeeded or failed: it keeps what the report needs
and cannot read back later (the pipeline's task graph, the run's error) in `report.json` beside
the run's record, then writes the page. `rebuild_report` writes the page again from those files,
for `kubeforge report RUN`. A report that cannot be written costs a warning, never the run.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubeforge.errors import ERROR_REPORT_DIR_ENV, InputError, read_error_reports
from kubeforge.local.journal import RunRecord, load_record
from kubeforge.local.report.artifacts import Limits
from kubeforge.local.report.graph import TaskNode, graph_of
from kubeforge.local.report.page import RunView, report_page

REPORT_FILE = "report.html"
SAVED_FILE = "report.json"
log = logging.getLogger(__name__)


def publish_report(record: RunRecord, pipeline: Callable[..., Any], error: BaseException | None = None) -> Path | None:
    """Save the graph and error of a run that just ended and write its report; None (and a warning) on failure."""
    try:
        saved = {"tasks": [node.to_json() for node in _graph_of_pipeline(pipeline)], "error": _error_text(error)}
        _write_atomically(record.folder / SAVED_FILE, json.dumps(saved, indent=1))
        return _write_page(record, Limits())
    except Exception as exc:
        log.warning(
            "could not write the run report of %s (%s); `kubeforge report %s` retries", record.name, exc, record.name
        )
        return None


def rebuild_report(pipeline_root: Path, run: str, limits: Limits | None = None) -> Path:
    """Write `report.html` of the earlier run `run` (its name or output folder) again; returns its path."""
    try:
        record = load_record(pipeline_root, run)
    except InputError as exc:
        raise InputError(str(exc).replace("--resume ", "report ", 1)) from None
    return _write_page(record, limits or Limits())


def report_path(record: RunRecord) -> Path:
    """Where a run's report goes: in the run's output folder, beside its tasks' folders."""
    return record.folder.parents[2] / record.name / REPORT_FILE


def _write_page(record: RunRecord, limits: Limits) -> Path:
    saved = _read_saved(record.folder / SAVED_FILE)
    nodes = [TaskNode.from_json(body) for body in saved.get("tasks", [])] or _nodes_from_record(record)
    target = report_path(record)
    target.parent.mkdir(parents=True, exist_ok=True)
    view = RunView(record=record, nodes=nodes, error=str(saved.get("error") or ""), run_dir=target.parent)
    _write_atomically(target, report_page(view, limits))
    return target


def _graph_of_pipeline(pipeline: Callable[..., Any]) -> list[TaskNode]:
    spec = getattr(pipeline, "pipeline_spec", None)
    if spec is None:
        return []
    from google.protobuf.json_format import MessageToDict

    return graph_of(MessageToDict(spec))


def _nodes_from_record(record: RunRecord) -> list[TaskNode]:
    """Without a saved graph (a run from before reports): the tasks the record names, unconnected."""
    names = list(dict.fromkeys([*record.tasks, *(name for name in record.timeline if name)]))
    return [TaskNode(name, name) for name in names]


def _error_text(error: BaseException | None) -> str:
    if error is None:
        return ""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", str(error)) or type(error).__name__]
    report_dir = os.environ.get(ERROR_REPORT_DIR_ENV)
    if report_dir and Path(report_dir).is_dir():
        lines.extend(str(report.get("message", "")) for report in read_error_reports(Path(report_dir)))
    return "\n".join(line for line in lines if line)


def _read_saved(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


def _write_atomically(path: Path, text: str) -> None:
    descriptor, staging = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(staging, 0o644)  # readable like the run's other outputs (mkstemp makes it private)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


__all__ = ["REPORT_FILE", "publish_report", "rebuild_report", "report_path"]
