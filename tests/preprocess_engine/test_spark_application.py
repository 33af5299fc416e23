"""The SparkApplication for the Spark Operator, validated against the upstream CRD schema (../shared/crds)."""

from __future__ import annotations

import json

from crd_schema import schema_errors

from kubeforge.preprocess_engine.spark_application import SparkResources, spark_application

CRD = "sparkoperator.k8s.io_sparkapplications.yaml"


def test_manifest_is_valid_against_the_crd() -> None:
    outputs = {"train": "s3://b/train.parquet", "validation": "s3://b/v.parquet", "test": "s3://b/t.parquet"}
    arguments = ["--data", "s3://b/raw.parquet", "--label", "y", "--outputs", json.dumps(outputs)]
    manifest = spark_application("prep-1", "kubeflow", arguments, SparkResources(executors=4))
    assert schema_errors(manifest, CRD) == []
    assert manifest["spec"]["executor"]["instances"] == 4
    assert manifest["spec"]["arguments"] == arguments


def test_a_wrong_field_is_caught_by_the_schema() -> None:
    manifest = spark_application("prep-1", "kubeflow", [])
    manifest["spec"]["type"] = "Ruby"
    del manifest["spec"]["sparkVersion"]
    errors = schema_errors(manifest, CRD)
    assert any("Ruby" in e for e in errors)
    assert any("sparkVersion" in e for e in errors)
