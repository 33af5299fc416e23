"""Model builders for the training engine: the tabular MLP, a small image CNN, or a user factory.

A model is chosen by a string: `mlp`, `cnn`, or `package.module:factory`, where the factory is
called as `factory(in_features=..., out_features=...)` and returns a torch.nn.Module.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence

import torch
from torch import nn

from kubeforge.errors import InputError

BUILTIN_MODELS = ("mlp", "cnn")


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


class SmallCNN(nn.Module):
    """A two-block convolutional network for square single-channel images given as flat rows.

    Each row holds side*side pixel features (for example the 64 columns of scikit-learn's
    8x8 digits); the network reshapes it to (1, side, side).
    """

    def __init__(self, in_features: int, out_features: int, channels: Sequence[int] = (16, 32), dropout: float = 0.1):
        super().__init__()
        side = math.isqrt(in_features)
        if side * side != in_features or side < 4:
            raise InputError(
                f"model 'cnn': needs a square image of at least 4x4 pixels as features, got {in_features} "
                "features; use model 'mlp' for tabular data"
            )
        first, second = ([*list(channels), 32, 32])[:2]
        self.side = side
        self.features = nn.Sequential(
            nn.Conv2d(1, first, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(first, second, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        pooled = side // 2
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(second * pooled * pooled, out_features))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Map a float32 batch of flat pixel rows to logits."""
        images = features.reshape(features.shape[0], 1, self.side, self.side)
        outputs: torch.Tensor = self.head(self.features(images))
        return outputs


def build_model(
    spec: str, in_features: int, out_features: int, hidden: Sequence[int] = (64, 32), dropout: float = 0.1
) -> nn.Module:
    """Build the model named by `spec` (`mlp`, `cnn` or `module:factory`)."""
    if spec == "mlp":
        return TabularMLP(in_features, out_features, hidden, dropout)
    if spec == "cnn":
        return SmallCNN(in_features, out_features, hidden or (16, 32), dropout)
    module_name, sep, factory_name = spec.partition(":")
    if not sep or not module_name or not factory_name:
        raise InputError(
            f"model is {spec!r}; use one of {', '.join(BUILTIN_MODELS)} or an import path 'package.module:factory'"
        )
    try:
        factory = getattr(importlib.import_module(module_name), factory_name)
    except ImportError as exc:
        raise InputError(f"model {spec!r}: module {module_name!r} does not import ({exc})") from exc
    except AttributeError as exc:
        raise InputError(f"model {spec!r}: module {module_name!r} has no attribute {factory_name!r}") from exc
    model = factory(in_features=in_features, out_features=out_features)
    if not isinstance(model, nn.Module):
        raise InputError(f"model {spec!r}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    return model


__all__ = ["BUILTIN_MODELS", "SmallCNN", "TabularMLP", "build_model"]
