"""The epoch gate between a tuner and a training job: one answer per epoch, written atomically, read by every rank."""

from __future__ import annotations

import threading
from pathlib import Path

from kubeforge.training.epoch_gate import answered, gate_file, open_gate, wait_for_gate


def test_the_first_answer_stands_and_is_read_back(tmp_path: Path) -> None:
    gates = tmp_path / "gates"
    assert not answered(gates, 1)
    open_gate(gates, 1, go_on=False)
    open_gate(gates, 1, go_on=True)  # a second answer (a retried tuner) does not overturn the first
    assert gate_file(gates, 1).read_text() == "stop" and answered(gates, 1)
    assert wait_for_gate(str(gates), 1) is False
    open_gate(gates, 2, go_on=True)
    assert wait_for_gate(str(gates), 2) is True
    assert sorted(path.name for path in gates.iterdir()) == ["epoch-1", "epoch-2"]  # no staged leftovers


def test_a_waiting_worker_goes_on_once_answered_and_stops_when_nobody_answers(tmp_path: Path) -> None:
    gates = tmp_path / "gates"
    answer = threading.Timer(0.2, open_gate, args=(gates, 3, True))
    answer.start()
    assert wait_for_gate(str(gates), 3, timeout_s=60.0) is True
    answer.join()
    assert wait_for_gate(str(gates), 4, timeout_s=0.1) is False  # a vanished tuner reads as stop
