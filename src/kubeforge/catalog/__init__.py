"""The component catalogue: listing, lazy component ops, loading components and pipelines, compiling."""

from kubeforge.catalog.listing import STABILITY_LEVELS, ComponentEntry, lazy_op, list_components

__all__ = ["STABILITY_LEVELS", "ComponentEntry", "lazy_op", "list_components"]
