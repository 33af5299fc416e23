"""kubeforge: reusable Kubeflow Pipelines components for tabular ML with PyTorch."""

__version__ = "0.1.0"

IMAGE_REPOSITORY = "ghcr.io/kubeforge/kubeforge"
"""Where the one kubeforge image is published; every component runs in it."""

IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
"""The image tag derived from the package version, used as every component's base image."""

__all__ = ["IMAGE", "IMAGE_REPOSITORY", "__version__"]
