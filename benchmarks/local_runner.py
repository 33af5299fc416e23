"""kubeforge's local runner against kfp.local's SubprocessRunner, on the same pipelines in one run.

Per-task overhead (the headline figure): a one-task pipeline whose component only imports what the
catalogue's components import (torch, pandas, pyarrow, a kubeforge core) and does nothing else, so
its wall time is all overhead: interpreter start or fork, imports, kfp's executor, the orchestration
around the task. Median of OVERHEAD_REPEATS runs per runner; beside it the mean CPU seconds per
task (this process, kfp.local's task subprocesses, the warm worker and its forks), which a busy
machine stretches far less than wall time.
Per component, for each of four components, on the same data (scikit-learn's breast cancer set):
- own work: the component's core called in this process (imports already warm);
- task: the component run as a one-component pipeline fed by importers, once through kfp.local's
  SubprocessRunner (a new interpreter per task) and once through kubeforge's runner (a fork of
  the warm worker per task, caching off so every task really runs);
- overhead = task - own work. Median of REPEATS runs each.
Whole pipeline: tabular_classifier with kubeforge's runner from a cold start (warm worker not yet
started, empty cache), then the unchanged pipeline again (every task served from the cache);
kfp.local's wall time for the same pipeline is printed alongside.
Last line: one JSON object.
"""

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp import dsl, local
from kfp.dsl import Artifact, Dataset, Model

from kubeforge.components.evaluation.classification import core as evaluation
from kubeforge.components.evaluation.classification import evaluate_op
from kubeforge.components.preprocess.tabular import core as preprocessing
from kubeforge.components.preprocess.tabular import preprocess_op
from kubeforge.components.serving.deploy import core as deployment
from kubeforge.components.serving.deploy import deploy_op
from kubeforge.components.training.pytorch import core as training
from kubeforge.components.training.pytorch import train_op
from kubeforge.demo import write_breast_cancer_csv
from kubeforge.local import forkserver
from kubeforge.local.forkserver import shared_fork_server, stop_shared_fork_server
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import LocalRun, run_pipeline_locally
from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier
from kubeforge.serving.local import stop_local_server

REPEATS = 3
OVERHEAD_REPEATS = 5
EPOCHS = 30
Runner = Callable[[Callable[..., Any], dict[str, Any], Path], LocalRun]


def _kfp_local(pipeline: Callable[..., Any], params: dict[str, Any], root: Path) -> LocalRun:
    return run_pipeline_locally(pipeline, params, root, runner=local.SubprocessRunner(use_venv=False))


def _kubeforge(cache: bool) -> Runner:
    def run(pipeline: Callable[..., Any], params: dict[str, Any], root: Path) -> LocalRun:
        return run_pipeline_locally(pipeline, params, root, options=RunOptions(cache=cache))

    return run


def _median_seconds(action: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def imports_only() -> None:
    """What every catalogue component imports, and no work."""
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import torch  # noqa: F401

    from kubeforge.components.training.pytorch import core  # noqa: F401


@dsl.pipeline(name="bench-overhead")
def overhead_only() -> None:
    imports_only()


def _overhead(runner: Runner, root: Path) -> tuple[float, float]:
    """Median wall seconds of the one-task pipeline, and its mean CPU seconds (load-independent)."""
    times = []
    cpu_before = _cpu_seconds()
    for _ in range(OVERHEAD_REPEATS):
        started = time.perf_counter()
        runner(overhead_only, {}, root)
        times.append(time.perf_counter() - started)
    return statistics.median(times), (_cpu_seconds() - cpu_before) / OVERHEAD_REPEATS


def _cpu_seconds() -> float:
    """CPU seconds spent so far by this process, its waited-for subprocesses (kfp.local's tasks) and the
    warm worker with the tasks it forked and reaped."""
    spent = os.times()
    total = spent.user + spent.system + spent.children_user + spent.children_system
    if _shared_server_pid() is not None:
        fields = Path(f"/proc/{_shared_server_pid()}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime
    return total


def _shared_server_pid() -> int | None:
    server = forkserver._shared
    return server.pid if server is not None and server.alive() else None


def _own_work(work: Path, csv: Path, outputs: preprocessing.PreprocessOutputs, model_dir: str) -> dict[str, float]:
    counter = iter(range(10_000))

    def own_preprocess() -> None:
        preprocessing.preprocess(csv, outputs, label="target")

    def own_train() -> None:
        inputs = training.TrainInputs(outputs.train, outputs.validation, outputs.preprocessor)
        training.train_model(inputs, model_dir, training.TrainParams(workers=2, epochs=EPOCHS))

    def own_evaluate() -> None:
        evaluation.evaluate_classifier(outputs.test, model_dir, work / f"plots{next(counter)}", thresholds={})

    def own_deploy() -> None:
        deployment.deploy(model_dir, target="local", model_name="bench-own")
        stop_local_server("bench-own")

    actions = {"preprocess": own_preprocess, "train": own_train, "evaluate": own_evaluate, "deploy": own_deploy}
    return {name: _median_seconds(action) for name, action in actions.items()}


def _one_task_pipelines(csv: Path, outputs: preprocessing.PreprocessOutputs, model_dir: str) -> dict[str, Any]:
    def imported(kind: type, path: str) -> Any:
        return dsl.importer(artifact_uri=path, artifact_class=kind).output

    @dsl.pipeline(name="bench-preprocess")
    def task_preprocess():  # type: ignore[no-untyped-def]
        preprocess_op(data=imported(Dataset, str(csv)), label_column="target")

    @dsl.pipeline(name="bench-train")
    def task_train():  # type: ignore[no-untyped-def]
        train_op(
            train_data=imported(Dataset, outputs.train),
            validation_data=imported(Dataset, outputs.validation),
            preprocessor=imported(Artifact, outputs.preprocessor),
            workers=2,
            epochs=EPOCHS,
        )

    @dsl.pipeline(name="bench-evaluate")
    def task_evaluate():  # type: ignore[no-untyped-def]
        evaluate_op(test_data=imported(Dataset, outputs.test), model=imported(Model, model_dir))

    @dsl.pipeline(name="bench-deploy")
    def task_deploy():  # type: ignore[no-untyped-def]
        deploy_op(model=imported(Model, model_dir), model_name="bench-task")

    return {"preprocess": task_preprocess, "train": task_train, "evaluate": task_evaluate, "deploy": task_deploy}


def _as_tasks(pipelines: dict[str, Any], runner: Runner, root: Path) -> dict[str, float]:
    def action(pipeline: Callable[..., Any]) -> Callable[[], None]:
        def run() -> None:
            runner(pipeline, {}, root)
            stop_local_server("bench-task")

        return run

    return {name: _median_seconds(action(pipeline)) for name, pipeline in pipelines.items()}


def _whole_pipeline(csv: Path, work: Path) -> dict[str, float]:
    params = {"data_uri": str(csv), "model_name": "bench-pipeline", "epochs": EPOCHS}

    def timed(runner: Runner, root: Path) -> float:
        started = time.perf_counter()
        try:
            runner(tabular_classifier, params, root)
        finally:
            stop_local_server("bench-pipeline")
        return time.perf_counter() - started

    stop_shared_fork_server()  # cold: the warm worker starts inside the timed run
    cold = timed(_kubeforge(cache=True), work / "pipeline-root")
    cached = timed(_kubeforge(cache=True), work / "pipeline-root")
    peer = timed(_kfp_local, work / "kfp-local-root")
    return {"cold_wall_s": cold, "cached_rerun_wall_s": cached, "kfp_local_wall_s": peer}


def main() -> None:
    """Measure both runners side by side and print the report; the last line is JSON."""
    work = Path(tempfile.mkdtemp(prefix="kubeforge-bench-"))
    os.environ["KUBEFORGE_HOME"] = str(work / "home")
    csv = write_breast_cancer_csv(work / "bc.csv")
    out = work / "prepared"
    outputs = preprocessing.PreprocessOutputs(
        *(str(out / name) for name in ("train.parquet", "val.parquet", "test.parquet", "pre.json", "stats.md"))
    )
    model_dir = str(work / "model")
    own = _own_work(work, csv, outputs, model_dir)
    pipelines = _one_task_pipelines(csv, outputs, model_dir)
    peer_per_task, peer_cpu = _overhead(_kfp_local, work / "kfp-local-overhead")
    peer_task = _as_tasks(pipelines, _kfp_local, work / "kfp-local")
    shared_fork_server()  # per-task cost is measured with the warm worker up, as in any run after its first task
    per_task, our_cpu = _overhead(_kubeforge(cache=False), work / "kubeforge-overhead")
    our_task = _as_tasks(pipelines, _kubeforge(cache=False), work / "kubeforge")
    peer_overhead = {name: peer_task[name] - own[name] for name in own}
    our_overhead = {name: our_task[name] - own[name] for name in own}
    whole = _whole_pipeline(csv, work)

    print(
        f"{'component':<12}{'own s':>9}{'kfp.local s':>13}{'overhead':>10}{'kubeforge s':>13}{'overhead':>10}",
        file=sys.stderr,
    )
    for name in own:
        row = f"{own[name]:>9.2f}{peer_task[name]:>13.2f}{peer_overhead[name]:>10.2f}"
        print(f"{name:<12}{row}{our_task[name]:>13.2f}{our_overhead[name]:>10.2f}", file=sys.stderr)
    print("tabular_classifier: " + ", ".join(f"{k} {v:.2f}" for k, v in whole.items()), file=sys.stderr)

    print(f"per-task overhead: kfp.local {peer_per_task:.2f} s, kubeforge {per_task:.2f} s", file=sys.stderr)
    print(f"per-task CPU: kfp.local {peer_cpu:.3f} s, kubeforge {our_cpu:.3f} s", file=sys.stderr)
    figures = {
        "per_task_overhead_s": round(per_task, 3),
        "kfp_local_per_task_overhead_s": round(peer_per_task, 3),
        "per_task_cpu_s": round(our_cpu, 3),
        "kfp_local_per_task_cpu_s": round(peer_cpu, 3),
        "cold_wall_s": round(whole["cold_wall_s"], 2),
        "cached_rerun_wall_s": round(whole["cached_rerun_wall_s"], 3),
        "kfp_local_wall_s": round(whole["kfp_local_wall_s"], 2),
        "own_work_s": {k: round(v, 3) for k, v in own.items()},
        "kfp_local_component_overhead_s": {k: round(v, 3) for k, v in peer_overhead.items()},
        "kubeforge_component_overhead_s": {k: round(v, 3) for k, v in our_overhead.items()},
        "kfp_local_task_s": {k: round(v, 3) for k, v in peer_task.items()},
        "kubeforge_task_s": {k: round(v, 3) for k, v in our_task.items()},
        "repeats": REPEATS,
        "overhead_repeats": OVERHEAD_REPEATS,
        "epochs": EPOCHS,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    ratios = {
        "overhead_vs_kfp_local": round(peer_per_task / max(per_task, 1e-3), 1),
        "cpu_per_task_vs_kfp_local": round(peer_cpu / max(our_cpu, 1e-3), 1),
        "cached_rerun_speedup": round(whole["cold_wall_s"] / whole["cached_rerun_wall_s"], 1),
        "cold_wall_vs_kfp_local": round(whole["kfp_local_wall_s"] / whole["cold_wall_s"], 2),
    }
    print(json.dumps({"benchmark": "local_runner", "ratios": ratios, "figures": figures}))


if __name__ == "__main__":
    main()
