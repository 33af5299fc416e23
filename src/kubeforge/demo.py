"""`make demo`: the tabular_classifier pipeline on a real dataset, end to end, on this machine.

The data is scikit-learn's breast cancer dataset (569 rows, 30 features), which ships inside
the installed scikit-learn package, written out as CSV. Everything runs on embedded defaults:
kubeforge's local runner (kfp.local's orchestration, tasks forked from a warm worker), a local
artifact directory and a local model server. Caching is off: the deploy task starts a server
process, which a cached deploy would not.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import click
import pandas as pd

from kubeforge import settings
from kubeforge.local.progress import Progress
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import LocalRun, run_pipeline_locally
from kubeforge.serving.client import infer, output_by_name
from kubeforge.serving.local import list_local_servers, stop_local_server

MODEL_NAME = "breast-cancer"
LABEL = "target"


def write_breast_cancer_csv(path: Path) -> Path:
    """Write scikit-learn's bundled breast cancer data as CSV (label column `target`, 0 = malignant)."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def run_demo(workdir: Path, epochs: int = 30, sample_rows: int = 5) -> dict[str, Any]:
    """Run the pipeline, query the deployed model, print a report, stop the server."""
    from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier

    started = time.perf_counter()
    state_dir = workdir / "home"
    os.environ[settings.HOME.name] = str(state_dir)
    data = write_breast_cancer_csv(workdir / "data" / "breast_cancer.csv")
    _say(f"data: {data} (scikit-learn breast cancer, 569 rows x 30 features)")
    run = run_pipeline_locally(
        tabular_classifier,
        {"data_uri": str(data), "label_column": LABEL, "model_name": MODEL_NAME, "epochs": epochs},
        workdir / "pipeline_root",
        options=RunOptions(cache=False, progress=Progress.for_stream(sys.stderr, json_events=False)),
    )
    evaluation = json.loads((run.task_dir("evaluate-classifier") / "plots" / "evaluation.json").read_text())
    servers = {server.name: server for server in list_local_servers(state_dir)}
    report: dict[str, Any] = {"run_dir": str(run.run_dir), "pipeline_seconds": round(run.seconds, 1)}
    try:
        _print_metrics(evaluation)
        if MODEL_NAME in servers:
            report["predictions"] = _query(servers[MODEL_NAME].url, run, sample_rows)
        else:
            _say("the gate did not pass, so nothing was deployed")
        _print_artifacts(run)
    finally:
        if stop_local_server(MODEL_NAME, state_dir):
            _say(f"stopped the model server {MODEL_NAME!r}")
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    _say(f"demo finished in {report['total_seconds']} s (pipeline {report['pipeline_seconds']} s)")
    return report


def _query(url: str, run: LocalRun, rows: int) -> list[dict[str, Any]]:
    test = pd.read_parquet(run.task_dir("preprocess-tabular") / "test_data").head(rows)
    response = infer(url, MODEL_NAME, test.drop(columns=[LABEL]))
    labels = output_by_name(response, "predictions")
    probabilities = output_by_name(response, "probabilities")
    classes = len(probabilities) // len(labels)
    _say(f"\nserved at {url}; {rows} raw test rows sent to /v2/models/{MODEL_NAME}/infer:")
    results = []
    for i, (label, truth) in enumerate(zip(labels, test[LABEL].tolist(), strict=True)):
        p = probabilities[i * classes : (i + 1) * classes]
        _say(f"  row {i}: predicted {label} (p={max(p):.3f}), actual {truth}")
        results.append({"predicted": label, "actual": truth, "probabilities": p})
    return results


def _print_metrics(evaluation: dict[str, Any]) -> None:
    _say("\ntest-split metrics:")
    for name, value in evaluation["metrics"].items():
        _say(f"  {name:<10} {value:.4f}")
    verdict = "passed" if evaluation["passed"] else "failed: " + "; ".join(evaluation["reasons"])
    _say(f"gate {verdict}")


def _print_artifacts(run: LocalRun) -> None:
    _say(f"\nartifacts under {run.run_dir}:")
    for task in sorted(path for path in run.run_dir.iterdir() if path.is_dir()):
        for artifact in sorted(task.iterdir()):
            _say(f"  {task.name}/{artifact.name}")


def _say(text: str) -> None:
    click.echo(text)


__all__ = ["run_demo", "write_breast_cancer_csv"]
