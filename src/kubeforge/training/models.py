"""Model builders for the training engine: the tabular MLP."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kubeforge.errors import InputError


class TabularMLP(nn.Module):
    """A feed-forward network for preprocessed tabular features.

    Outputs logits of shape (rows, classes) for classification, or (rows, 1) for regression.
    """

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (64, 32), dropout: float = 0.1):
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise InputError(f"model: needs at least one input and one output (got {in_features} -> {out_features})")
        if any(width < 1 for width in hidden):
            raise InputError(f"hidden_layers: every width must be positive (got {list(hidden)})")
        layers: list[nn.Module] = []
        width = in_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map a float32 batch of features to logits or values."""
        outputs: torch.Tensor = self.net(features)
        return outputs


def parse_hidden_layers(text: str) -> list[int]:
    """Parse hidden layer widths written as `64,32`; an empty string means no hidden layer."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise InputError(f"hidden_layers: expected comma-separated integers such as '64,32', got {text!r}") from exc


__all__ = ["TabularMLP", "parse_hidden_layers"]
