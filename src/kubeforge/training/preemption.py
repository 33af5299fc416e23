"""Preemption: SIGTERM asks the workers to finish their step, checkpoint and stop.

The worker installs `StopRequest` as its SIGTERM handler; the engine asks it, at step
boundaries every rank reaches together, whether any rank was told to stop. A stopped worker
writes the file named by $KUBEFORGE_PREEMPTED_FILE (set by `kubeforge.launch.node`) and exits
with PREEMPTED_EXIT_CODE, which the launch backends map to "preempted: requeue and resume".
"""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType

from kubeforge import settings

PREEMPTED_EXIT_CODE = 143
"""128 + SIGTERM: what a terminated process reports, and what the Kubeflow operators' ExitCode policy retries."""
PREEMPTED_FILE_ENV = settings.PREEMPTED_FILE.name


class Preempted(Exception):
    """Raised by the engine once every rank has checkpointed after a stop request."""

    def __init__(self, epoch: int, global_step: int) -> None:
        super().__init__(f"preempted after epoch {epoch}, step {global_step}: checkpointed, resume to continue")
        self.epoch = epoch
        self.global_step = global_step


class StopRequest:
    """Set by SIGTERM (and SIGINT once installed); read by the training loop."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> StopRequest:
        """Make SIGTERM and SIGINT set the request instead of killing the process."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        return self

    def _handle(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def report_preempted(message: str) -> None:
    """Tell the node supervisor that this worker stopped for a preemption (no-op outside one)."""
    path = settings.PREEMPTED_FILE.read()
    if path:
        Path(path).write_text(message + "\n")


__all__ = ["PREEMPTED_EXIT_CODE", "PREEMPTED_FILE_ENV", "Preempted", "StopRequest", "report_preempted"]
