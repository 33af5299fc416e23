"""The launch protocol's status and logs of a scheduler backend, read through its poll and log_range."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from kubeforge.launch.base import JobHandle, JobState, JobStatus
from kubeforge.scheduler.backends.base import PolledLaunch
from kubeforge.scheduler.logs import LogSlice, slice_of
from kubeforge.training.preemption import PREEMPTED_EXIT_CODE

OUTPUT = "epoch 1 ✓\nepoch 2 ✓\nno newline at the end ✓".encode()


class _PagedBackend(PolledLaunch):
    """Ends launches with the exit codes it is given and serves OUTPUT three bytes a page (splitting lines
    and the three-byte ✓ across pages), as a backend whose log reads are bounded would."""

    name: ClassVar[str] = "paged"

    def __init__(self, exit_codes: dict[str, int]) -> None:
        self.exit_codes = exit_codes
        self.reads: list[int | None] = []

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        return {job_id: self.exit_codes[text] for job_id, text in handles.items() if text in self.exit_codes}

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        self.reads.append(offset)
        return slice_of(OUTPUT, offset, 3)

    def reason(self, handle: str) -> str:
        return "OOMKilled" if handle == "oom" else ""


def _handle(text: str) -> JobHandle:
    return JobHandle("paged", "kf-1-0", text)


def test_status_is_running_until_the_launch_ends_then_its_exit_codes_state() -> None:
    backend = _PagedBackend({"ok": 0, "oom": 137, "bad": 4, "preempted": PREEMPTED_EXIT_CODE})
    assert backend.status(_handle("still-running")) == JobStatus(JobState.RUNNING)
    assert backend.status(_handle("ok")) == JobStatus(JobState.SUCCEEDED)
    assert backend.status(_handle("oom")) == JobStatus(JobState.FAILED, "OOMKilled")
    assert backend.status(_handle("bad")) == JobStatus(JobState.FAILED, "exit code 4")
    assert backend.status(_handle("preempted")).state is JobState.PREEMPTED


def test_logs_come_back_whole_line_by_line_across_pages() -> None:
    backend = _PagedBackend({})
    lines = list(backend.logs(_handle("any")))
    assert lines == ["epoch 1 ✓\n", "epoch 2 ✓\n", "no newline at the end ✓"]
    assert backend.reads == [*range(0, len(OUTPUT), 3), len(OUTPUT)]  # page after page, then one empty read
