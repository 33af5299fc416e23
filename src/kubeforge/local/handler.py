"""kfp.local's SubprocessTaskHandler, with lightweight Python components forked from the warm worker.

kfp.local resolves placeholders and builds the task's command (`sh -ec <kfp's launcher script>
<component source> --executor_input ... --function_to_execute ...`); this handler recognises
kfp's own launcher script and, instead of starting `sh` and a new interpreter, asks the fork
server to run `kfp.dsl.executor_main` on the same source and arguments. Any other command
(components that pip-install packages, a virtual-environment runner) goes to kfp's handler, and
so does every task while the warm worker cannot start (see forkserver.py).
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from kfp.dsl import component_factory
from kfp.local import status, subprocess_task_handler

from kubeforge.errors import ForkServerError
from kubeforge.local.forkserver import shared_fork_server


@cache
def _kfp_launcher_script() -> str:
    """The `sh -ec` script kfp writes for a lightweight component without a pip install."""

    def probe() -> None:
        """The component function; only the generated launcher script is used."""

    command, _ = component_factory._get_command_and_args_for_lightweight_component(probe)
    return str(command[2])


def warm_command(full_command: list[str]) -> tuple[str, list[str]] | None:
    """(component source, executor arguments) when `full_command` is kfp's plain launcher, else None."""
    if len(full_command) < 4 or full_command[:2] != ["sh", "-ec"] or full_command[2] != _kfp_launcher_script():
        return None
    return full_command[3], list(full_command[4:])


class WarmTaskHandler(subprocess_task_handler.SubprocessTaskHandler):  # type: ignore[misc]
    """Runs a task in a fresh fork of the warm worker when kfp's subprocess runner would run it as a
    plain `python3 -m kfp.dsl.executor_main` without a virtual environment."""

    def run(self) -> Any:
        """Run the task; stream its output like kfp's handler does; return kfp's status."""
        plan = None if self.runner.use_venv else warm_command(self.full_command)
        if plan is None:
            return super().run()
        try:
            server = shared_fork_server()
        except ForkServerError:  # logged once by shared_fork_server; kfp's own way still runs the task
            return super().run()
        source, argv = plan
        outcome = server.run(source, argv, env={**os.environ, **self.env_vars}, cwd=os.getcwd(), on_output=_print_line)
        if outcome.signal is not None:
            print(f"task {outcome.describe()}", flush=True)
        return status.Status.SUCCESS if outcome.ok else status.Status.FAILURE


def _print_line(line: str) -> None:
    print(line, end="")


__all__ = ["WarmTaskHandler", "warm_command"]
