"""A user model factory, importable as `tiny_models:linear` (tests/support is on sys.path via this folder)."""

from torch import nn


def linear(in_features: int, out_features: int) -> nn.Module:
    """A single linear layer: the smallest model a user might bring."""
    return nn.Linear(in_features, out_features)
