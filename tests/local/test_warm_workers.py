"""Tasks forked from the warm worker: isolated from one another, and the worker stays single-threaded."""

import json
import os
import sys
from pathlib import Path

import pytest
from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from kubeforge.errors import InputError, KubeforgeError
from kubeforge.local.forkserver import ForkServer, shared_fork_server
from kubeforge.local.handler import warm_command
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import run_pipeline_locally


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
