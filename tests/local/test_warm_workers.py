"""Tasks forked from the warm worker: isolated from one another, the worker single-threaded, its start bounded."""

import functools
import json
import os
import sys
from pathlib import Path

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from kubeforge.errors import ForkServerError, InputError, KubeforgeError
from kubeforge.local import forkserver
from kubeforge.local.forkserver import ForkServer, shared_fork_server, start_timeout_s
from kubeforge.local.handler import warm_command
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.settings import WARM_WORKER_START_TIMEOUT


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def pollute(report: Output[Artifact]) -> None:
    """Change process-global state three ways, hold memory, and report what this process was."""
    import json
    import os
    import sys

    import kfp

    kfp.polluted = True  # type: ignore[attr-defined]
    os.environ["KUBEFORGE_POLLUTED"] = "yes"
    sys.modules["kubeforge_pollution"] = sys  # a module that does not exist anywhere
    kfp.leak = bytearray(64 * 1024 * 1024)  # type: ignore[attr-defined]
    with open(report.path, "w") as handle:
        json.dump({"pid": os.getpid(), "torch": "torch" in sys.modules}, handle)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def observe(after: Input[Artifact], report: Output[Artifact]) -> None:
    """Report whether anything the previous task changed is visible here."""
    import json
    import os
    import sys

    import kfp

    seen = {
        "pid": os.getpid(),
        "kfp_attribute": hasattr(kfp, "polluted") or hasattr(kfp, "leak"),
        "environment": os.environ.get("KUBEFORGE_POLLUTED"),
        "module": "kubeforge_pollution" in sys.modules,
        "torch": "torch" in sys.modules,
    }
    with open(report.path, "w") as handle:
        json.dump(seen, handle)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def crash() -> None:
    """Die the way a segfault or the OOM killer ends a process: by a signal, with no Python cleanup."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def refuse(row: int) -> None:
    """Fail the way kubeforge's components do: with a KubeforgeError naming the problem."""
    from kubeforge.errors import InputError

    raise InputError(f"row {row} is bad")


@dsl.pipeline(name="refusing")
def refusing(row: int) -> None:
    refuse(row=row)


@dsl.pipeline(name="isolation")
def isolation() -> None:
    first = pollute()
    observe(after=first.outputs["report"])


@dsl.pipeline(name="crashing")
def crashing() -> None:
    crash()


def test_the_warm_worker_has_one_thread_after_importing_torch_pandas_and_kubeforge() -> None:
    server = shared_fork_server()
    assert server.threads_at_start == 1
    modules = Path(f"/proc/{server.pid}/maps").read_text()
    assert "libtorch" in modules and "libarrow" in modules


def test_a_stopped_worker_leaves_nothing_behind() -> None:
    server = ForkServer(python=sys.executable)
    server.close()  # never started: nothing to stop, the socket folder goes
    assert not Path(server.socket_path).parent.exists()


def test_a_task_sees_nothing_the_previous_task_changed(tmp_path: Path) -> None:
    run = run_pipeline_locally(isolation, {}, tmp_path / "root", options=RunOptions(cache=False))

    polluter = json.loads((run.task_dir("pollute") / "report").read_text())
    observer = json.loads((run.task_dir("observe") / "report").read_text())
    assert observer == {
        "pid": observer["pid"],
        "kfp_attribute": False,
        "environment": None,
        "module": False,
        "torch": True,
    }
    assert polluter["torch"] is True  # forked from the worker that imported torch, not a fresh interpreter
    assert len({polluter["pid"], observer["pid"], os.getpid(), shared_fork_server().pid}) == 4


def test_a_task_killed_by_a_signal_fails_the_run_and_the_next_run_still_works(tmp_path: Path) -> None:
    zygote = shared_fork_server().pid
    with pytest.raises(KubeforgeError, match="crash"):
        run_pipeline_locally(crashing, {}, tmp_path / "root", options=RunOptions(cache=False))
    assert shared_fork_server().pid == zygote  # the worker itself survived

    run = run_pipeline_locally(isolation, {}, tmp_path / "root", options=RunOptions(cache=False))
    assert json.loads((run.task_dir("observe") / "report").read_text())["kfp_attribute"] is False


def test_only_kfps_own_launcher_takes_the_warm_path() -> None:
    spec = pollute.pipeline_spec.deployment_spec["executors"]["exec-pollute"]["container"]
    command = [*spec["command"], *spec["args"]]
    source, argv = warm_command(command) or ("", [])
    assert "def pollute" in source and argv[0] == "--executor_input"
    assert warm_command(["sh", "-c", "pip install x", *command]) is None
    assert warm_command([sys.executable, "-c", "print(1)"]) is None


def test_each_run_gets_its_own_tasks_error_message(tmp_path: Path) -> None:
    for row in (3, 7):  # the second run's task is forked from the same worker as the first one's
        with pytest.raises(InputError, match=f"row {row} is bad"):
            run_pipeline_locally(refusing, {"row": row}, tmp_path / "root")


@pytest.fixture
def worker_that_never_starts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fork server's interpreter replaced by one that never answers; a 1 s start timeout.

    Returns the file where each start attempt writes its process id. The shared worker of the
    other tests is set aside, not stopped, and comes back afterwards.
    """
    starts = tmp_path / "starts"
    python = tmp_path / "silent-python"
    python.write_text(f"#!/bin/sh\necho $$ >> {starts}\nexec sleep 600\n")
    python.chmod(0o700)
    monkeypatch.setenv(WARM_WORKER_START_TIMEOUT.name, "1")
    monkeypatch.setattr(forkserver, "_shared", None)
    monkeypatch.setattr(forkserver, "_failed_start", None)
    monkeypatch.setattr(forkserver, "ForkServer", functools.partial(ForkServer, python=str(python)))
    return starts


def test_a_worker_that_never_comes_up_fails_fast_naming_the_setting(worker_that_never_starts: Path) -> None:
    server = forkserver.ForkServer()
    with pytest.raises(ForkServerError, match=f"within 1 s.*raise {WARM_WORKER_START_TIMEOUT.name}"):
        server.start()
    [pid] = worker_that_never_starts.read_text().split()
    assert not Path(f"/proc/{pid}").exists()  # killed and reaped
    assert not Path(server.socket_path).parent.exists()


def test_a_run_whose_worker_cannot_start_runs_its_tasks_cold_and_tries_once(
    worker_that_never_starts: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = run_pipeline_locally(isolation, {}, tmp_path / "root", options=RunOptions(cache=False))

    observer = json.loads((run.task_dir("observe") / "report").read_text())
    assert observer["torch"] is False and observer["kfp_attribute"] is False  # a new interpreter, as kfp.local's
    assert len(worker_that_never_starts.read_text().split()) == 1  # the second task did not wait again
    assert WARM_WORKER_START_TIMEOUT.name in capsys.readouterr().out  # kfp.local logs to stdout while a task runs


@pytest.mark.parametrize("value", ["soon", "0", "-3", "inf"])
def test_a_start_timeout_that_is_not_a_positive_number_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WARM_WORKER_START_TIMEOUT.name, value)
    with pytest.raises(InputError, match=f"{WARM_WORKER_START_TIMEOUT.name}='{value}'.*number above 0"):
        start_timeout_s()


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def blas_threads(report: Output[Artifact]) -> None:
    """Report how many threads each loaded BLAS library will use."""
    import json

    from threadpoolctl import threadpool_info

    with open(report.path, "w") as handle:
        json.dump([library["num_threads"] for library in threadpool_info() if library["user_api"] == "blas"], handle)


@dsl.pipeline(name="blas-threads")
def blas_threads_pipeline() -> None:
    blas_threads()


def test_a_task_gets_the_blas_threads_its_environment_asks_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the warm worker itself imported with 1
    run = run_pipeline_locally(blas_threads_pipeline, {}, tmp_path / "root", options=RunOptions(cache=False))
    threads = json.loads((run.task_dir("blas-threads") / "report").read_text())
    assert threads and set(threads) == {3}
