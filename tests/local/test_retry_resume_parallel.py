"""set_retry with its backoff, --resume after a killed run, independent tasks and ParallelFor run at once, bounded."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kfp import dsl

from kubeforge.catalog.pipelines import load_pipeline
from kubeforge.errors import KubeforgeError
from kubeforge.local.journal import state_root
from kubeforge.local.progress import Progress
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import run_pipeline_locally


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def flaky(attempts_file: str) -> int:
    """Fail on the first two attempts, pass on the third; every attempt is logged with its start time."""
    import time

    with open(attempts_file, "a") as handle:
        handle.write(f"{time.time()}\n")
    with open(attempts_file) as handle:
        attempt = len(handle.read().splitlines())
    if attempt < 3:
        raise RuntimeError(f"attempt {attempt} fails")
    return attempt


def _retrying(attempts_file: Path, retries: int):  # type: ignore[no-untyped-def]
    @dsl.pipeline(name="retrying")
    def retrying() -> None:
        flaky(attempts_file=str(attempts_file)).set_retry(num_retries=retries, backoff_duration="1s", backoff_factor=2)

    return retrying


def test_a_task_that_fails_twice_passes_on_its_second_retry_after_the_backoff(tmp_path: Path) -> None:
    attempts = tmp_path / "attempts"
    run = run_pipeline_locally(_retrying(attempts, retries=2), {}, tmp_path / "root")

    starts = [float(line) for line in attempts.read_text().splitlines()]
    assert len(starts) == 3 and run.count("ran") == 1
    assert starts[1] - starts[0] >= 1.0 and starts[2] - starts[1] >= 2.0  # 1 s, then 1 s x factor 2


def test_retries_run_out(tmp_path: Path) -> None:
    attempts = tmp_path / "attempts"
    with pytest.raises(KubeforgeError, match="flaky"):
        run_pipeline_locally(_retrying(attempts, retries=1), {}, tmp_path / "root")
    assert len(attempts.read_text().splitlines()) == 2


RESUMABLE = """
from kfp import dsl
from kfp.dsl import Dataset, Input, Output


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def first(made: Output[Dataset]) -> None:
    import uuid

    with open(made.path, "w") as handle:
        handle.write(uuid.uuid4().hex)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def second(made: Input[Dataset], gate: str, copied: Output[Dataset]) -> None:
    import os
    import time

    with open(gate + ".pid", "w") as handle:
        handle.write(str(os.getpid()))
    while not os.path.exists(gate):
        time.sleep(0.1)
    with open(made.path) as source, open(copied.path, "w") as target:
        target.write(source.read())


@dsl.pipeline(name="resumable")
def resumable(gate: str) -> None:
    made = first().set_caching_options(False)
    second(made=made.outputs["made"], gate=gate).set_caching_options(False)
"""


def test_resume_after_a_killed_run_reuses_its_finished_tasks(tmp_path: Path) -> None:
    source = tmp_path / "resumable.py"
    source.write_text(RESUMABLE)
    gate, root = tmp_path / "gate", tmp_path / "root"
    kubeforge = Path(sys.executable).parent / "kubeforge"
    command = [str(kubeforge), "run", f"{source}:resumable", "--local", "--pipeline-root", str(root)]
    killed = subprocess.Popen(
        [*command, "--param", f"gate={gate}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for(lambda: Path(f"{gate}.pid").exists(), killed)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.wait()
    orphan = int(Path(f"{gate}.pid").read_text())
    _wait_for(lambda: not _alive(orphan))  # the task died with the run that started it

    [record] = (state_root(root) / "runs").iterdir()
    assert json.loads((record / "run.json").read_text())["state"] == "running"
    gate.touch()
    resumed = run_pipeline_locally(
        load_pipeline(f"{source}:resumable"), {}, root, options=RunOptions(resume=record.name)
    )

    assert resumed.tasks["first"]["how"] == "resumed" and resumed.tasks["second"]["how"] == "ran"
    made = (resumed.task_dir("first") / "made").read_text()
    assert resumed.task_dir("first").parent.name == record.name  # the killed run's own output
    assert (resumed.task_dir("second") / "copied").read_text() == made


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def _wait_for(condition, process: subprocess.Popen[bytes] | None = None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 300
    while not condition():
        assert process is None or process.poll() is None, "the run ended before the test could kill it"
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.1)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def hold(item: int, log_dir: str) -> None:
    """Hold for a second and log when this iteration ran."""
    import json
    import os
    import time

    started = time.time()
    time.sleep(1.0)
    with open(os.path.join(log_dir, f"{item}.json"), "w") as handle:
        json.dump([started, time.time()], handle)


def _most_at_once(log_dir: Path) -> int:
    spans = [json.loads(path.read_text()) for path in log_dir.glob("*.json")]
    return max(sum(1 for start, end in spans if start <= moment < end) for moment, _ in spans)


def test_parallel_for_runs_iterations_at_once_up_to_its_parallelism(tmp_path: Path) -> None:
    @dsl.pipeline(name="fan-out")
    def fan_out(log_dir: str) -> None:
        with dsl.ParallelFor([0, 1, 2, 3, 4], parallelism=2) as item:
            hold(item=item, log_dir=log_dir)

    run_pipeline_locally(fan_out, {"log_dir": str(tmp_path)}, tmp_path / "root", options=RunOptions(cpus=8))
    assert len(list(tmp_path.glob("*.json"))) == 5
    assert _most_at_once(tmp_path) == 2


def test_cpu_limits_bound_iterations_by_this_machines_cores(tmp_path: Path) -> None:
    @dsl.pipeline(name="heavy-fan-out")
    def heavy_fan_out(log_dir: str) -> None:
        with dsl.ParallelFor([0, 1, 2, 3], parallelism=4) as item:
            hold(item=item, log_dir=log_dir).set_cpu_limit("2")

    run_pipeline_locally(heavy_fan_out, {"log_dir": str(tmp_path)}, tmp_path / "root", options=RunOptions(cpus=4))
    assert _most_at_once(tmp_path) == 2


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def meet(folder: str, me: str, other: str) -> str:
    """Mark that `me` started, then wait for `other` to: both finish only if they run at the same time."""
    import os
    import time

    open(os.path.join(folder, me), "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(os.path.join(folder, other)):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{other} never started while {me} ran: the tasks ran one after another")
        time.sleep(0.05)
    return me


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def join(left: str, right: str, marker: str) -> None:
    """Write both upstream outputs, joined, to `marker`."""
    with open(marker, "w") as handle:
        handle.write(f"{left}+{right}")


def test_independent_tasks_run_at_the_same_time_and_their_dependants_after_both(tmp_path: Path) -> None:
    @dsl.pipeline(name="rendezvous")
    def rendezvous(folder: str, marker: str) -> None:
        left = meet(folder=folder, me="left", other="right").set_caching_options(False)
        right = meet(folder=folder, me="right", other="left").set_caching_options(False)
        join(left=left.output, right=right.output, marker=marker).set_caching_options(False)

    marker = tmp_path / "joined"
    arguments = {"folder": str(tmp_path), "marker": str(marker)}
    run = run_pipeline_locally(rendezvous, arguments, tmp_path / "root", options=RunOptions(cpus=2))
    assert marker.read_text() == "left+right" and run.count("ran") == 3


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def hold_for_company(item: int, log_dir: str) -> None:
    """Log when this task ran; it waits (at most 10 s) until a second task has started, then ends."""
    import json
    import os
    import time

    started = time.time()
    open(os.path.join(log_dir, f"{item}.started"), "w").close()
    deadline = time.monotonic() + 10
    while len([name for name in os.listdir(log_dir) if name.endswith(".started")]) < 2:
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    time.sleep(0.2)
    with open(os.path.join(log_dir, f"{item}.json"), "w") as handle:
        json.dump([started, time.time()], handle)


def test_cpu_limits_bound_independent_tasks_by_this_machines_cores(tmp_path: Path) -> None:
    @dsl.pipeline(name="three-heavy-tasks")
    def three_heavy_tasks(log_dir: str) -> None:
        for item in range(3):
            hold_for_company(item=item, log_dir=log_dir).set_cpu_limit("2").set_caching_options(False)

    run_pipeline_locally(three_heavy_tasks, {"log_dir": str(tmp_path)}, tmp_path / "root", options=RunOptions(cpus=4))
    assert len(list(tmp_path.glob("*.json"))) == 3
    assert _most_at_once(tmp_path) == 2


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def fail_now() -> None:
    """Fail at once."""
    raise RuntimeError("this task fails")


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def outlast_failure(events: str) -> str:
    """Run until the runner has reported a failed task (at most 120 s)."""
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with open(events) as handle:
            if '"task-failed"' in handle.read():
                break
        time.sleep(0.05)
    return "outlasted"


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def after(value: str, marker: str) -> None:
    """Leave a marker that this task ran."""
    with open(marker, "w") as handle:
        handle.write(value)


def test_a_failure_in_a_plain_dag_starts_no_further_task_as_kfp_local(tmp_path: Path) -> None:
    @dsl.pipeline(name="failing-branch")
    def failing_branch(events: str, marker: str) -> None:
        fail_now().set_caching_options(False)
        slow = outlast_failure(events=events).set_caching_options(False)
        after(value=slow.output, marker=marker).set_caching_options(False)

    events, marker = tmp_path / "events.jsonl", tmp_path / "after-ran"
    with events.open("w") as stream, pytest.raises(KubeforgeError, match="fail-now"):
        run_pipeline_locally(
            failing_branch,
            {"events": str(events), "marker": str(marker)},
            tmp_path / "root",
            options=RunOptions(cpus=2, progress=Progress(stream=stream, mode="json")),
        )
    finished = [json.loads(line) for line in events.read_text().splitlines()]
    assert {(event["event"], event["task"]) for event in finished} >= {
        ("task-failed", "fail-now"), ("task-finished", "outlast-failure")
    }  # fmt: skip
    assert not marker.exists()


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def on_exit(status: dsl.PipelineTaskFinalStatus, marker: str) -> None:
    """The exit task: leave a marker that it ran."""
    with open(marker, "w") as handle:
        handle.write("exit ran")


def test_with_control_flow_a_failure_skips_only_its_dependants_and_the_exit_task_runs(tmp_path: Path) -> None:
    @dsl.pipeline(name="failing-branch-with-exit")
    def failing_branch_with_exit(events: str, marker: str, skipped_marker: str, exit_marker: str) -> None:
        with dsl.ExitHandler(on_exit(marker=exit_marker).set_caching_options(False)):
            failed = fail_now().set_caching_options(False)
            after(value="never", marker=skipped_marker).after(failed).set_caching_options(False)
            slow = outlast_failure(events=events).set_caching_options(False)
            after(value=slow.output, marker=marker).set_caching_options(False)

    events, marker, exit_marker = tmp_path / "events.jsonl", tmp_path / "after-ran", tmp_path / "exit-ran"
    skipped_marker = tmp_path / "after-failure-ran"
    arguments = {"events": str(events), "marker": str(marker), "skipped_marker": str(skipped_marker)}
    arguments["exit_marker"] = str(exit_marker)
    with events.open("w") as stream, pytest.raises(KubeforgeError, match="fail-now"):
        run_pipeline_locally(
            failing_branch_with_exit,
            arguments,
            tmp_path / "root",
            options=RunOptions(cpus=2, progress=Progress(stream=stream, mode="json")),
        )
    assert marker.read_text() == "outlasted"  # independent of the failure: it goes on, as in kfp.local
    assert not skipped_marker.exists()  # downstream of the failure: skipped
    assert exit_marker.read_text() == "exit ran"
