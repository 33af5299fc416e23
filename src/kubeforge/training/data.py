"""Loading a split into tensors through the fitted preprocessor, and sharding it by rank."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from kubeforge.errors import InputError
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.tabular import read_table


@dataclass(frozen=True)
class TensorSplit:
    """Model-ready features and targets of one split."""

    features: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return int(self.features.shape[0])


def load_split(path: str, preprocessor: FittedPreprocessor, parameter: str) -> TensorSplit:
    """Read raw rows and apply the preprocessor; errors name the parameter and file."""
    frame = read_table(path)
    source = f"{parameter} {path}"
    if preprocessor.label not in frame.columns:
        raise InputError(f"{source}: label column '{preprocessor.label}' is missing")
    features = preprocessor.transform(frame, source=source)
    targets = preprocessor.scale_targets(preprocessor.encode_labels(frame[preprocessor.label], source=source))
    return TensorSplit(features=torch.tensor(features), targets=torch.tensor(targets))


def shard_indices(rows: int, rank: int, world_size: int, seed: int, epoch: int) -> torch.Tensor:
    """This rank's share of one epoch's shuffled row order.

    Every rank draws the same permutation, pads it by wrapping around to a multiple of the
    world size (as DistributedSampler does), and takes every world_size-th index, so all
    ranks run the same number of steps and collectives stay aligned.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(rows, generator=generator)
    padded = -(-rows // world_size) * world_size
    if padded > rows:
        order = torch.cat([order, order[: padded - rows]])
    return order[rank::world_size]


__all__ = ["TensorSplit", "load_split", "shard_indices"]
