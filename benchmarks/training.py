"""Training engine benchmark: throughput against plain DDP, 2-vs-1 scaling, recovery time.

On the same synthetic data (60,000 rows x 20 features, 2 classes, preprocessed once):
- engine_vs_plain_ddp: kubeforge engine samples/s / a plain hand-written DDP loop's samples/s,
  same MLP, optimizer, per-rank batch and world size (2), both under torchrun; steady-state
  epochs only (the first epoch of each run is dropped), median over REPEATS runs each.
- scaling_2_vs_1: engine samples/s with 2 workers over 1 worker at the same global batch.
- recovery_s: local backend, one worker SIGKILLed mid-epoch; seconds from the kill to the
  restarted group having reloaded the checkpoint and started training again.
- retry_overhead_s: the training component (its own process, `local` backend) SIGKILLed together
  with its job in the middle of epoch 3 of RETRY_EPOCHS and run again on the same outputs (it
  resumes from the last checkpoint): wall time from first start to the retry's end, minus an
  uninterrupted component run's; epoch_s: that uninterrupted run's median epoch (goal:
  retry_overhead_s <= epoch_s + 10). reattach_overhead_s: the same with only the task killed (the
  retry re-attaches to the running job).
Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from sklearn.datasets import make_classification

from kubeforge.components.preprocess.tabular.core import PreprocessOutputs, SplitFractions, preprocess
from kubeforge.components.training.pytorch.core import TrainInputs, TrainParams, run_place
from kubeforge.launch.base import JobHandle, TrainingJob
from kubeforge.launch.local import LocalBackend, worker_processes
from kubeforge.launch.shared_filesystem import run_local, run_on_shared_filesystem
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.config import TrainConfig
from kubeforge.training.data import load_split
from kubeforge.training.engine import EVENTS_LOG, METRICS_LOG

ROWS, FEATURES, EPOCHS, BATCH, REPEATS = 60_000, 20, 3, 64, 3
RETRY_EPOCHS = 5
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "support"))
from train_component import start_task, task_arguments  # noqa: E402


def _prepare(work: Path) -> PreprocessOutputs:
    x, y = make_classification(n_samples=ROWS, n_features=FEATURES, n_informative=10, random_state=0)
    pd.DataFrame(x, columns=[f"x{i}" for i in range(FEATURES)]).assign(label=y).to_csv(work / "data.csv", index=False)
    outputs = PreprocessOutputs(*(str(work / n) for n in ("tr.parquet", "va.parquet", "te.parquet", "p.json", "s.md")))
    preprocess(work / "data.csv", outputs, label="label", fractions=SplitFractions(0.02, 0.02))
    return outputs


def _config(data: PreprocessOutputs, run_dir: Path, batch: int, epochs: int = EPOCHS) -> TrainConfig:
    return TrainConfig(
        train_data=data.train,
        validation_data=data.validation,
        preprocessor=data.preprocessor,
        model_dir=str(run_dir / "model"),
        run_dir=str(run_dir),
        checkpoint_dir=str(run_dir / "ckpt"),
        hidden_layers=[64, 32],
        epochs=epochs,
        batch_size=batch,
    )


def _steady(rates: list[float]) -> float:
    return statistics.median(rates[1:])


def engine_rate(data: PreprocessOutputs, work: Path, workers: int, batch: int, tag: str) -> float:
    summary = run_local(_config(data, work / tag, batch), workers=workers)
    return _steady([row["samples_per_second"] for row in summary["history"]])


def plain_rate(data: PreprocessOutputs, work: Path, workers: int, batch: int, tag: str) -> float:
    preprocessor = FittedPreprocessor.load(data.preprocessor)
    split = load_split(data.train, preprocessor, "train_data")
    tensors = work / "tensors.pt"
    if not tensors.exists():
        torch.save({"features": split.features, "targets": split.targets}, tensors)
    out = work / f"{tag}.json"
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // workers))}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={workers}",
            str(HERE / "plain_ddp.py"),
            str(tensors),
            str(EPOCHS),
            str(batch),
            str(out),
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return _steady(json.loads(out.read_text())["samples_per_second"])


def recovery_seconds(data: PreprocessOutputs, work: Path) -> float:
    run_dir = work / "recovery"
    config = _config(data, run_dir, batch=BATCH, epochs=3)
    job = TrainingJob(name="recovery", config=config, nproc_per_node=2, max_restarts=2)
    runner = threading.Thread(target=run_on_shared_filesystem, args=(LocalBackend(), job, 0.5))
    runner.start()
    metrics = run_dir / METRICS_LOG
    while not (metrics.is_file() and metrics.read_text().strip()):
        time.sleep(0.05)
    time.sleep(0.5)
    victim = worker_processes(run_dir)[1]
    killed = time.time()
    os.kill(victim, signal.SIGKILL)
    runner.join()
    events = [json.loads(line) for line in (run_dir / EVENTS_LOG).read_text().splitlines()]
    restart = next(e for e in events if e["event"] == "start" and e["attempt"] == 1)
    return float(restart["time"] - killed)


def _component_run(data: PreprocessOutputs, work: Path, tag: str, kill_job: bool | None) -> tuple[float, list[float]]:
    """Wall seconds of the component on `local` (killed in epoch 3 and retried unless `kill_job` is None)
    and the epoch times of its run."""
    params = TrainParams(workers=2, epochs=RETRY_EPOCHS, batch_size=BATCH, hidden_layers=[64, 32])
    inputs = TrainInputs(data.train, data.validation, data.preprocessor)
    model_dir = work / tag / "model"
    model_dir.parent.mkdir(parents=True)
    run_dir = Path(run_place(str(model_dir), "", shared=True))
    arguments = task_arguments(inputs, model_dir, params, work / tag / "handle.json")
    started = time.perf_counter()
    if kill_job is not None:
        task = start_task(arguments, work / tag / "first.log")
        metrics = run_dir / METRICS_LOG
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 2):
            time.sleep(0.02)
        task.kill()
        task.wait()
        if kill_job:
            LocalBackend().cancel(JobHandle.from_json((run_dir / "handle.json").read_text()))
    start_task(arguments, work / tag / "retry.log").wait()
    seconds = time.perf_counter() - started
    summary = json.loads((run_dir / "summary.json").read_text())
    return seconds, [row["seconds"] for row in summary["history"]]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kubeforge-bench-training-"))
    data = _prepare(work)
    engine, plain, single = [], [], []
    for repeat in range(REPEATS):
        engine.append(engine_rate(data, work, 2, BATCH, f"engine2-{repeat}"))
        plain.append(plain_rate(data, work, 2, BATCH, f"plain2-{repeat}"))
        single.append(engine_rate(data, work, 1, 2 * BATCH, f"engine1-{repeat}"))
    recovery = recovery_seconds(data, work)
    straight_s, epochs_s = _component_run(data, work, "component-straight", kill_job=None)
    retried_s, _ = _component_run(data, work, "component-retried", kill_job=True)
    reattached_s, _ = _component_run(data, work, "component-reattached", kill_job=False)
    figures: dict[str, Any] = {
        "engine_samples_per_s_2w": round(statistics.median(engine)),
        "plain_ddp_samples_per_s_2w": round(statistics.median(plain)),
        "engine_samples_per_s_1w": round(statistics.median(single)),
        "scaling_2_vs_1": round(statistics.median(engine) / statistics.median(single), 3),
        "recovery_s": round(recovery, 2),
        "retry_overhead_s": round(retried_s - straight_s, 2),
        "reattach_overhead_s": round(reattached_s - straight_s, 2),
        "epoch_s": round(statistics.median(epochs_s), 2),
        "component_s": round(straight_s, 2),
        "rows": ROWS,
        "per_rank_batch": BATCH,
        "repeats": REPEATS,
    }
    for name, value in figures.items():
        print(f"{name:>28}: {value}", file=sys.stderr)
    ratios = {"engine_vs_plain_ddp": round(statistics.median(engine) / statistics.median(plain), 3)}
    print(json.dumps({"benchmark": "training", "ratios": ratios, "figures": figures}))


if __name__ == "__main__":
    main()
