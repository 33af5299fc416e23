"""Class weights for the training loss: none, balanced on the training data, or the preprocessor's.

``balanced`` counts the classes of the training split that this run reads (every rank loads the
whole split, so all ranks get the same weights); ``preprocessor`` uses the weights that
preprocessing stored in the fitted preprocessor (`preprocess/tabular` with
``class_weights="balanced"``). Only the training loss is weighted: the validation loss stays the
plain mean, comparable between runs with and without weights.
"""

from __future__ import annotations

import torch

from kubeforge.class_weights import balanced_class_weights
from kubeforge.errors import InputError
from kubeforge.preprocessor import FittedPreprocessor
from kubeforge.training.config import CLASS_WEIGHTINGS


def check_class_weighting(weighting: str, preprocessor: FittedPreprocessor, source: str) -> None:
    """Refuse an unknown weighting, or one that `preprocessor` (read from `source`) cannot support."""
    if weighting not in CLASS_WEIGHTINGS:
        raise InputError(f"class_weighting is {weighting!r}; it must be one of {', '.join(CLASS_WEIGHTINGS)}")
    if weighting == "none":
        return
    if preprocessor.task != "classification":
        raise InputError(
            f"class_weighting is {weighting!r} but the preprocessor {source} is for {preprocessor.task}; "
            "class weights apply to classification only: set class_weighting='none'"
        )
    if weighting == "preprocessor" and preprocessor.class_weights is None:
        raise InputError(
            f"class_weighting is 'preprocessor' but the preprocessor {source} carries no class weights; "
            "run preprocess/tabular with class_weights='balanced', or use class_weighting='balanced'"
        )


def loss_class_weights(
    weighting: str, preprocessor: FittedPreprocessor, targets: torch.Tensor, source: str
) -> torch.Tensor | None:
    """The cross-entropy weight per class index for `weighting`, or None for an unweighted loss.

    `targets` are the training split's class indices; `source` names the preprocessor in errors.
    """
    check_class_weighting(weighting, preprocessor, source)
    if weighting == "none":
        return None
    if weighting == "preprocessor":
        assert preprocessor.class_weights is not None
        return torch.tensor(preprocessor.class_weights, dtype=torch.float32)
    classes = preprocessor.classes or []
    counts = torch.bincount(targets, minlength=len(classes)).tolist()
    return torch.tensor(balanced_class_weights(counts, classes, "train_data"), dtype=torch.float32)


__all__ = ["check_class_weighting", "loss_class_weights"]
