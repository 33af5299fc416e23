"""The scheduler's name for the one resources type, `kubeforge.resources` (quota amounts and their parsing)."""

from __future__ import annotations

from kubeforge.resources import RESOURCE_NAMES, Resources, parse_cpu, parse_memory

__all__ = ["RESOURCE_NAMES", "Resources", "parse_cpu", "parse_memory"]
