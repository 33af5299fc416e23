"""One state enum for the launch layer and the scheduler: the values its store keeps, read the same way by both."""

from __future__ import annotations

import kubeforge.launch.base as launch_base
import kubeforge.scheduler.model as scheduler_model
from kubeforge.launch.base import state_of_exit_code
from kubeforge.launch.state import JobState
from kubeforge.training.preemption import PREEMPTED_EXIT_CODE


def test_the_launch_layer_and_the_scheduler_share_one_class() -> None:
    assert launch_base.JobState is JobState
    assert scheduler_model.JobState is JobState


def test_the_stored_strings_are_unchanged() -> None:
    stored = {"pending", "admitted", "running", "stopping", "succeeded", "failed", "cancelled"}
    assert {state.value for state in JobState} == stored | {"preempted"}
    assert all(JobState(value) == value for value in stored)


def test_terminal_and_live_split_every_state() -> None:
    ends = {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED, JobState.PREEMPTED}
    assert {state for state in JobState if state.terminal} == ends
    # a job the scheduler admitted or is stopping is still live: a re-run launcher attaches to it
    assert {state for state in JobState if state.live} == set(JobState) - ends
    assert {state for state in JobState if state.holds_resources} == {
        JobState.ADMITTED,
        JobState.RUNNING,
        JobState.STOPPING,
    }


def test_exit_codes_read_into_the_one_enum() -> None:
    assert state_of_exit_code(0) is JobState.SUCCEEDED
    assert state_of_exit_code(PREEMPTED_EXIT_CODE) is JobState.PREEMPTED
    assert state_of_exit_code(1) is JobState.FAILED
