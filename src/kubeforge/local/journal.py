"""What a local run records about itself under `<pipeline root>/.kubeforge/`, so it can be resumed.

`runs/<run>/run.json` holds the pipeline's name, its arguments, its state (running, succeeded,
failed) and where each finished task's outputs are; `runs/<run>/tasks/` holds one entry per
finished task in the content-keyed format of the cache, which `--resume` reads back even for
tasks that opted out of caching. Files are replaced atomically: a killed run leaves its last
complete record, never a torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubeforge.errors import InputError
from kubeforge.local.cache import ContentCache

STATE_FOLDER = ".kubeforge"


def state_root(pipeline_root: Path) -> Path:
    """Where kubeforge keeps its cache and run records for a pipeline root."""
    return pipeline_root / STATE_FOLDER


@dataclass
class RunRecord:
    """The record of one local run; `save` rewrites run.json atomically."""

    folder: Path
    pipeline: str
    arguments: dict[str, Any]
    state: str = "running"
    tasks: dict[str, dict[str, str]] = field(default_factory=dict)
    timeline: dict[str, dict[str, Any]] = field(default_factory=dict)
    """When each task and the run (key "") started and finished (epoch seconds), and tasks that failed."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def name(self) -> str:
        """The run's name (also the name of its output folder under the pipeline root)."""
        return self.folder.name

    def journal(self) -> ContentCache:
        """The finished-task entries of this run."""
        return ContentCache(str(self.folder / "tasks"))

    def task_started(self, task: str) -> None:
        """Note when `task` started."""
        with self._lock:
            self.timeline[task] = {"started": time.time()}
            self._save_locked()

    def task_failed(self, task: str) -> None:
        """Note that `task` failed, and when."""
        with self._lock:
            self.timeline.setdefault(task, {}).update(finished=time.time(), failed=True)
            self._save_locked()

    def task_finished(self, task: str, how: str, folder: str) -> None:
        """Note that `task` finished (`how`: ran, cached, resumed) with its outputs in `folder`."""
        with self._lock:
            self.tasks[task] = {"how": how, "folder": folder}
            self.timeline.setdefault(task, {})["finished"] = time.time()
            self._save_locked()

    def finish(self, state: str) -> None:
        """Set the final state (succeeded or failed)."""
        with self._lock:
            self.state = state
            self.timeline.setdefault("", {})["finished"] = time.time()
            self._save_locked()

    def save(self) -> None:
        """Write run.json."""
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        body = {
            "pipeline": self.pipeline,
            "arguments": self.arguments,
            "state": self.state,
            "tasks": self.tasks,
            "timeline": self.timeline,
        }
        descriptor, staging = tempfile.mkstemp(dir=self.folder, prefix=".run-", suffix=".json")
        with os.fdopen(descriptor, "w") as handle:
            json.dump(body, handle, indent=2, default=str)
        os.replace(staging, self.folder / "run.json")


def new_record(pipeline_root: Path, run_name: str, pipeline: str, arguments: dict[str, Any]) -> RunRecord:
    """A fresh record for a run about to start."""
    record = RunRecord(state_root(pipeline_root) / "runs" / run_name, pipeline, dict(arguments))
    record.timeline[""] = {"started": time.time()}
    record.save()
    return record


def load_record(pipeline_root: Path, run: str) -> RunRecord:
    """The record of an earlier run, by run name or by its output folder's path."""
    folder = state_root(pipeline_root) / "runs" / Path(run).name
    try:
        body = json.loads((folder / "run.json").read_text())
    except FileNotFoundError:
        known = sorted(path.name for path in (state_root(pipeline_root) / "runs").glob("*")) or ["none"]
        raise InputError(
            f"--resume {run}: no such run under {pipeline_root}; runs there: {', '.join(known[-5:])}"
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"--resume {run}: its record {folder / 'run.json'} is unreadable ({exc})") from None
    return RunRecord(
        folder, body["pipeline"], body["arguments"], body["state"], body["tasks"], body.get("timeline", {})
    )


__all__ = ["STATE_FOLDER", "RunRecord", "load_record", "new_record", "state_root"]
