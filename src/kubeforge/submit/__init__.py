"""Submitting a pipeline to a remote runner: Kubeflow Pipelines (`kfp`) or Vertex AI Pipelines (`vertex`)."""
