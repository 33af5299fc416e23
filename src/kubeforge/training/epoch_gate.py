"""The epoch gate: a tuner decides between epochs whether a trial goes on (pruning, Optuna-style).

With `TrainConfig.epoch_gate` set to a folder on a filesystem the tuner shares (local, slurm, queue
on this machine), every worker waits after each epoch but the last for `<folder>/epoch-<n>`, written
atomically by the tuner once it has read that epoch's row of the metrics log: `continue`, or `stop`
(the trial is pruned: the workers keep their end-of-epoch checkpoint and end as preempted). Every rank
reads the same file, so they agree without a collective. A tuner that does not answer within
`GATE_TIMEOUT_S` reads as `stop`: the job ends checkpointed, and a retried tuner resumes the trial.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

GATE_TIMEOUT_S = 1800.0
CONTINUE, STOP = "continue", "stop"


def gate_file(folder: str | Path, epoch: int) -> Path:
    """The file answering whether the trial goes on after `epoch` (1-based)."""
    return Path(folder) / f"epoch-{epoch}"


def open_gate(folder: str | Path, epoch: int, go_on: bool) -> None:
    """Answer for `epoch`: go on, or stop (pruned). Written atomically; a second answer is ignored."""
    target = gate_file(folder, epoch)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    staged.write_text(CONTINUE if go_on else STOP)
    os.replace(staged, target)


def answered(folder: str | Path, epoch: int) -> bool:
    """True once the tuner has answered for `epoch`."""
    return gate_file(folder, epoch).is_file()


def wait_for_gate(folder: str, epoch: int, timeout_s: float = GATE_TIMEOUT_S, poll_s: float = 0.02) -> bool:
    """Block until the tuner answers for `epoch`; True to go on, False to stop (also on timeout)."""
    deadline = time.monotonic() + timeout_s
    target = gate_file(folder, epoch)
    while time.monotonic() < deadline:
        if target.is_file():
            return target.read_text().strip() == CONTINUE
        time.sleep(poll_s)
    return False


__all__ = ["CONTINUE", "GATE_TIMEOUT_S", "STOP", "answered", "gate_file", "open_gate", "wait_for_gate"]
