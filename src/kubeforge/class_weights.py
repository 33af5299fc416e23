"""Balanced class weights, the one formula preprocessing and training share.

``rows / (classes * rows of the class)``, as scikit-learn's ``compute_class_weight("balanced")``:
a class holding a tenth of the rows weighs ten times a class holding all of them, and the
weights average to 1 over the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubeforge.errors import InputError


def balanced_class_weights(counts: Sequence[int], classes: Sequence[object], source: str) -> list[float]:
    """One weight per class from its row count (`counts[i]` rows of `classes[i]`); every class needs rows."""
    empty = [repr(value) for value, count in zip(classes, counts, strict=True) if count == 0]
    if empty:
        raise InputError(
            f"{source}: class(es) {', '.join(empty)} have no rows, so balanced class weights are undefined; "
            "add rows of those classes or turn class weighting off"
        )
    total = sum(counts)
    return [total / (len(counts) * count) for count in counts]


__all__ = ["balanced_class_weights"]
