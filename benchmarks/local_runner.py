"""Per-task overhead of kfp.local's SubprocessRunner against each component's own work.

For each component, in the same run and on the same data (scikit-learn's breast cancer set):
- own work: the component's core called in this process (imports already warm);
- task: the component run as a kfp.local task, i.e. a one-component pipeline fed by
  importers (kfp.local runs importers in-process, in well under a millisecond each).
Overhead = task - own work: interpreter start, kfp and kubeforge imports, executor I/O.
Median of REPEATS runs each. Last line: one JSON object.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp import dsl
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
from kubeforge.local_runner import run_pipeline_locally
from kubeforge.serving.local import stop_local_server

REPEATS = 3
EPOCHS = 30


def _median_seconds(action: Callable[[], Any]) -> float:
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="kubeforge-bench-"))
    os.environ["KUBEFORGE_HOME"] = str(work / "home")
    csv = write_breast_cancer_csv(work / "bc.csv")
    out = work / "prepared"
    outputs = preprocessing.PreprocessOutputs(
        *(str(out / name) for name in ("train.parquet", "val.parquet", "test.parquet", "pre.json", "stats.md"))
    )
    model_dir = str(work / "model")
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

    own = {
        "preprocess": _median_seconds(own_preprocess),
        "train": _median_seconds(own_train),
        "evaluate": _median_seconds(own_evaluate),
        "deploy": _median_seconds(own_deploy),
    }

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

    root = work / "root"

    def run(pipeline: Callable[..., Any]) -> Callable[[], None]:
        def action() -> None:
            run_pipeline_locally(pipeline, {}, root)
            stop_local_server("bench-task")

        return action

    pipelines = {"preprocess": task_preprocess, "train": task_train, "evaluate": task_evaluate, "deploy": task_deploy}
    task = {name: _median_seconds(run(pipeline)) for name, pipeline in pipelines.items()}
    overhead = {name: task[name] - own[name] for name in own}
    print(f"{'component':<12}{'own work s':>12}{'as task s':>12}{'overhead s':>12}", file=sys.stderr)
    for name in own:
        print(f"{name:<12}{own[name]:>12.2f}{task[name]:>12.2f}{overhead[name]:>12.2f}", file=sys.stderr)
    figures = {
        "own_work_s": {k: round(v, 3) for k, v in own.items()},
        "task_s": {k: round(v, 3) for k, v in task.items()},
        "overhead_s": {k: round(v, 3) for k, v in overhead.items()},
        "repeats": REPEATS,
    }
    ratios = {f"{k}_task_vs_own_work": round(task[k] / own[k], 2) for k in own}
    print(json.dumps({"benchmark": "local_runner", "ratios": ratios, "figures": figures}))


if __name__ == "__main__":
    main()
