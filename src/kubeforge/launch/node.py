"""Per-node entry point of every training launch: torchrun under a supervisor that reports preemption.

    python -m kubeforge.launch.node [torchrun arguments...]

Vertex AI gives each replica CLUSTER_SPEC (JSON: worker pools and this replica's place); it
becomes torchrun's --nnodes/--node-rank/--master-addr/--master-port. Under the Kubeflow
operators torchrun reads its PET_* variables itself; the local and slurm backends pass flags.

torchrun runs as a child. SIGTERM (a preemption, a drained node, SLURM's --signal, the end of
a pod's termination grace) is passed on; the workers finish their step, checkpoint and say so
in the file named by $KUBEFORGE_PREEMPTED_FILE. The node then exits with PREEMPTED_EXIT_CODE,
which every backend reads as "preempted: requeue and resume", whatever torchrun returned.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from kubeforge.errors import InputError
from kubeforge.training.preemption import PREEMPTED_EXIT_CODE, PREEMPTED_FILE_ENV

_WORKER_GRACE_S = 120.0


def rendezvous_flags(environ: Mapping[str, str]) -> list[str]:
    """torchrun flags for this node from CLUSTER_SPEC; none when the variable is absent."""
    text = environ.get("CLUSTER_SPEC")
    if not text:
        return []
    try:
        spec = json.loads(text)
        pools = {name: hosts for name, hosts in spec["cluster"].items() if name.startswith("workerpool")}
        task = spec["task"]
        host, port = pools["workerpool0"][0].rsplit(":", 1)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise InputError(f"CLUSTER_SPEC is not a Vertex AI cluster description: {exc}") from exc
    nodes = sum(len(hosts) for hosts in pools.values())
    rank = 0 if task["type"] == "workerpool0" else 1 + int(task["index"])
    return [f"--nnodes={nodes}", f"--node-rank={rank}", f"--master-addr={host}", f"--master-port={port}"]


def main(argv: list[str] | None = None) -> int:
    """Run torchrun with this node's rendezvous flags; returns its exit code, or the preempted code."""
    args = sys.argv[1:] if argv is None else argv
    command = [sys.executable, "-m", "torch.distributed.run", *rendezvous_flags(os.environ), *args]
    terminated: list[int] = []
    children: list[subprocess.Popen[bytes]] = []

    def pass_on(signum: int, _frame: FrameType | None) -> None:
        terminated.append(signum)
        for child in children:
            child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, pass_on)
    with tempfile.TemporaryDirectory(prefix="kubeforge-node-") as private:
        marker = Path(private) / "preempted"
        torchrun = subprocess.Popen(command, env={**os.environ, PREEMPTED_FILE_ENV: str(marker)})
        children.append(torchrun)
        code = torchrun.wait()
        _wait_for_workers(marker)
        if marker.exists() or (terminated and code != 0):
            return PREEMPTED_EXIT_CODE
    return code


def _wait_for_workers(marker: Path) -> None:
    """Wait (bounded) until no worker of this node is left: when SIGTERM reaches the whole process
    tree (SLURM), torchrun may stop before its workers, which then finish their checkpoint on their
    own. Workers are found by the marker path in their environment; orphans are reaped (PID 1 in a pod)."""
    needle = f"{PREEMPTED_FILE_ENV}={marker}".encode()
    deadline = time.monotonic() + _WORKER_GRACE_S
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if not any(needle in environ.split(b"\0") for environ in _environments()):
            return
        time.sleep(0.05)


def _environments() -> list[bytes]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            with contextlib.suppress(OSError):
                found.append((proc / "environ").read_bytes())
    return found


if __name__ == "__main__":
    sys.exit(main())
