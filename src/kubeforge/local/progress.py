"""Progress of a local run: tasks done, running and cached, and the time elapsed.

Three renderings of the same events: JSON lines for tools (`--json`), one line per event when
the output is not a terminal, and a single rewritten status line on a terminal. Everything
goes to one stream: `kubeforge run` puts it on stdout beside kfp.local's own logs, keeping stderr
for errors (with `--json`, the events are all stdout carries).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal, TextIO

Mode = Literal["json", "plain", "terminal", "off"]


@dataclass
class Counts:
    """How many tasks are running, finished (ran), cached (or resumed) and failed so far."""

    running: int = 0
    ran: int = 0
    cached: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        """Finished tasks, whether they ran or came from the cache."""
        return self.ran + self.cached


@dataclass
class Progress:
    """Counts task events and renders them to `stream` in `mode`."""

    stream: TextIO | None = None
    mode: Mode = "off"
    counts: Counts = field(default_factory=Counts)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def for_stream(cls, stream: TextIO, json_events: bool) -> Progress:
        """JSON events when asked, else a status line on a terminal and plain lines elsewhere."""
        mode: Mode = "json" if json_events else ("terminal" if stream.isatty() else "plain")
        return cls(stream=stream, mode=mode)

    def event(self, kind: str, task: str = "", **details: Any) -> None:
        """Record one event: run-started, task-started, task-finished, task-cached, task-resumed,
        task-failed, run-finished, run-failed."""
        with self._lock:
            self._count(kind)
            self._render(kind, task, details)

    def _count(self, kind: str) -> None:
        counts = self.counts
        if kind == "task-started":
            counts.running += 1
        elif kind in ("task-finished", "task-failed"):
            counts.running -= 1
            counts.ran += kind == "task-finished"
            counts.failed += kind == "task-failed"
        elif kind in ("task-cached", "task-resumed"):
            counts.running -= 1
            counts.cached += 1

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def _render(self, kind: str, task: str, details: dict[str, Any]) -> None:
        if self.stream is None or self.mode == "off":
            return
        counts = self.counts
        if self.mode == "json":
            record = {"event": kind, "task": task or None, "elapsed_s": round(self.elapsed(), 3), **details}
            record.update(done=counts.done, running=counts.running, cached=counts.cached, failed=counts.failed)
            self.stream.write(json.dumps(record) + "\n")
        else:
            summary = (
                f"[{self.elapsed():7.1f}s] done {counts.done} (cached {counts.cached}), "
                f"running {counts.running}, failed {counts.failed}"
            )
            what = f"{kind} {task}".strip()
            if self.mode == "terminal":
                end = "\n" if kind.startswith("run-") else ""
                self.stream.write(f"\r\x1b[K{summary} | {what}{end}")
            else:
                self.stream.write(f"{summary} | {what}\n")
        self.stream.flush()


__all__ = ["Counts", "Progress"]
