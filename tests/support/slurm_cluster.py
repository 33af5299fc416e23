"""A one-node SLURM cluster (munged, slurmctld, slurmd) on loopback, for tests and benchmarks.

Everything lives in a temporary folder with its own ports and munge socket, so several
clusters can run side by side; every daemon is stopped by its PID afterwards.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CONF_TEMPLATE = """\
ClusterName=kubeforge
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/run/slurmctld.pid
SlurmdPidFile={root}/run/slurmd.pid
SlurmctldLogFile={root}/log/slurmctld.log
SlurmdLogFile={root}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
PriorityType=priority/multifactor
ReturnToService=2
MaxArraySize=4001
MaxJobCount=100000
NodeName=localhost CPUs={cpus} CoresPerSocket={cpus} ThreadsPerCore=1 RealMemory={memory_mb} State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:{oversubscribe}
"""


@dataclass(frozen=True)
class SlurmCluster:
    """A running cluster: point SLURM_CONF at `conf` to use it."""

    root: Path
    conf: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for the SLURM clients."""
        return {"SLURM_CONF": str(self.conf)}


def slurm_available() -> bool:
    """True when the SLURM daemons and munge are installed."""
    return all(shutil.which(tool) for tool in ("slurmctld", "slurmd", "munged", "sbatch"))


@contextmanager
def running_slurm(oversubscribe: int = 16) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd; yield once the node is idle; stop them all."""
    root = Path(tempfile.mkdtemp(prefix="kubeforge-slurm-"))
    root.chmod(0o755)
    for sub in ("state", "spool", "log", "run", "munge"):
        (root / sub).mkdir()
    shutil.chown(root / "munge", "munge", "munge")
    (root / "munge").chmod(0o755)
    munge_socket = root / "munge" / "munge.socket"
    conf = root / "slurm.conf"
    conf.write_text(
        CONF_TEMPLATE.format(
            root=root,
            ctld_port=_free_port(),
            slurmd_port=_free_port(),
            munge_socket=munge_socket,
            cpus=os.cpu_count() or 1,
            memory_mb=_memory_mb(),
            oversubscribe=oversubscribe,
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    processes: list[subprocess.Popen[bytes]] = []
    try:
        munge_args = [
            f"--socket={munge_socket}",
            f"--pid-file={root}/munge/munged.pid",
            f"--log-file={root}/munge/munged.log",
            f"--seed-file={root}/munge/munged.seed",
        ]
        processes.append(_daemon(["runuser", "-u", "munge", "--", "munged", "--foreground", *munge_args], env))
        _wait_for(lambda: munge_socket.exists(), "munged", root / "munge" / "munged.log")
        processes.append(_daemon(["slurmctld", "-D", "-f", str(conf)], env))
        processes.append(_daemon(["slurmd", "-D", "-f", str(conf)], env))
        _wait_for(lambda: _node_ready(env), "slurmd", root / "log" / "slurmd.log")
        yield SlurmCluster(root=root, conf=conf)
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(root, ignore_errors=True)


def _daemon(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _node_ready(env: dict[str, str]) -> bool:
    result = subprocess.run(
        ["sinfo", "--noheader", "--format=%t"], env=env, capture_output=True, text=True, check=False
    )
    return result.returncode == 0 and result.stdout.strip() in ("idle", "mix", "alloc")


def _wait_for(ready: object, what: str, log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(ready) and ready():
            return
        time.sleep(0.1)
    detail = log.read_text()[-2000:] if log.is_file() else "(no log)"
    raise RuntimeError(f"{what} did not become ready in {timeout_s:.0f} s:\n{detail}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512
    return 4096


__all__ = ["SlurmCluster", "running_slurm", "slurm_available"]
