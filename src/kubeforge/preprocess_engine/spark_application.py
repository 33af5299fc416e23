"""Run the spark engine on Kubernetes: a SparkApplication for the Kubeflow Spark Operator, and its driver.

`spark_application` builds the custom resource (sparkoperator.k8s.io/v1beta2); its driver runs this
module (`python -m kubeforge.preprocess_engine.spark_application <args>`), which runs a
`PreprocessRequest` on the spark engine against the cluster's executors.
Inputs and outputs are s3:// or gs:// URIs the pods can reach.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from typing import Any

from kubeforge import IMAGE

MAIN_FILE = "local:///opt/kubeforge/spark_preprocess.py"


@dataclass(frozen=True)
class SparkResources:
    """Driver and executor sizes."""

    executors: int = 2
    executor_cores: int = 2
    executor_memory: str = "4g"
    driver_cores: int = 1
    driver_memory: str = "2g"


def spark_application(
    name: str,
    namespace: str,
    arguments: list[str],
    resources: SparkResources | None = None,
    image: str = IMAGE,
    service_account: str = "spark-operator-spark",
    spark_version: str = "4.0.0",
) -> dict[str, Any]:
    """The SparkApplication manifest that runs the preprocess driver with `arguments` (see `main`)."""
    resources = resources or SparkResources()
    labels = {"app.kubernetes.io/name": "kubeforge-preprocess", "app.kubernetes.io/part-of": "kubeforge"}
    return {
        "apiVersion": "sparkoperator.k8s.io/v1beta2",
        "kind": "SparkApplication",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "type": "Python",
            "pythonVersion": "3",
            "mode": "cluster",
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "mainApplicationFile": MAIN_FILE,
            "arguments": arguments,
            "sparkVersion": spark_version,
            "restartPolicy": {"type": "OnFailure", "onFailureRetries": 2, "onFailureRetryInterval": 30},
            "driver": {
                "cores": resources.driver_cores,
                "memory": resources.driver_memory,
                "serviceAccount": service_account,
                "labels": labels,
            },
            "executor": {
                "instances": resources.executors,
                "cores": resources.executor_cores,
                "memory": resources.executor_memory,
                "labels": labels,
            },
        },
    }


def main(argv: list[str] | None = None) -> None:
    """The driver: preprocess with the spark engine; outputs are given as one JSON object of URIs."""
    from kubeforge.preprocess_engine.engines import preprocess
    from kubeforge.preprocess_engine.options import PreprocessOutputs
    from kubeforge.preprocess_engine.request import PreprocessRequest

    parser = argparse.ArgumentParser(description="kubeforge preprocess driver (spark backend)")
    parser.add_argument("--data", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--outputs", required=True, help='{"train": uri, "validation": ..., "test": ..., ...}')
    parser.add_argument("--task", default="", help="classification, regression, or empty to infer it from the label")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    outputs = PreprocessOutputs(**json.loads(args.outputs))
    preprocess(PreprocessRequest(args.data, outputs, label=args.label, task=args.task, seed=args.seed), "spark")


if __name__ == "__main__":
    main()


__all__ = ["MAIN_FILE", "SparkResources", "main", "spark_application"]
