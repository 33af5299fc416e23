"""What a categorical column does with rare and unseen categories: one policy per column.

After scikit-learn's `OneHotEncoder(handle_unknown=..., min_frequency=..., max_categories=...)`:

- ``infrequent`` (the default): categories seen on fewer than `min_category_rows` training rows, those
  beyond the `max_categories` most frequent, and any category never seen in training map to one
  reserved level, `INFREQUENT`, the column's last category;
- ``ignore``: the same categories are kept, the others encode as all zeros (ordinal: -1);
- ``error``: every training category is kept and an unseen one is an error (the behaviour before
  policies existed, and the policy of preprocessor artifacts written without one).

The fit (`kept_categories`) and the apply step (`resolve_unknown`) are shared by every engine and
by the model server, so all of them treat a category the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from kubeforge.errors import InputError

CategoryPolicy = Literal["infrequent", "ignore", "error"]
CATEGORY_POLICIES: tuple[CategoryPolicy, ...] = ("infrequent", "ignore", "error")
INFREQUENT = "__infrequent__"
"""The reserved level of the ``infrequent`` policy (output column ``<column>=__infrequent__``)."""
SHOWN_VALUES = 5


def listed(values: Iterable[object], limit: int = SHOWN_VALUES) -> str:
    """At most `limit` values, comma-separated, then how many more there are: for error messages."""
    items = list(values)
    shown = ", ".join(str(value) for value in items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def check_policy(policy: str, field: str) -> CategoryPolicy:
    """`policy` when it is a known policy; otherwise an InputError naming `field` and the valid values."""
    if policy not in CATEGORY_POLICIES:
        raise InputError(f"{field} is {policy!r}; valid values are {', '.join(CATEGORY_POLICIES)}")
    return policy


def parse_column_policies(text: str) -> dict[str, CategoryPolicy]:
    """Per-column policies given as JSON text (`{"region": "error"}`); empty text means none."""
    if not text.strip():
        return {}
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"unknown_categories_by_column: not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(parsed, dict):
        raise InputError('unknown_categories_by_column: expected a JSON object such as {"region": "error"}')
    return {
        str(column): check_policy(policy, f"unknown_categories_by_column[{column!r}]")
        for column, policy in parsed.items()
    }


@dataclass(frozen=True)
class KeptCategories:
    """The fitted levels of one column and what was folded away."""

    categories: list[str]
    impute: str
    folded_categories: int
    folded_rows: int


def kept_categories(
    name: str, counts: Mapping[str, int], policy: CategoryPolicy, min_rows: int, max_categories: int
) -> KeptCategories:
    """The levels kept from the training split's non-missing category counts, under `policy`.

    Levels are sorted by text; the ``infrequent`` policy appends `INFREQUENT`. The most frequent
    category (ties broken by text) is always kept: it imputes missing values.
    """
    if not counts:
        raise InputError(f"training split: categorical column '{name}' has no values; drop it or fill it")
    if policy == "infrequent" and INFREQUENT in counts:
        raise InputError(
            f"training split: categorical column '{name}' holds the reserved value {INFREQUENT!r}; "
            "rename that value or set its policy to 'ignore' or 'error'"
        )
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = ranked
    if policy != "error":
        kept = [item for item in ranked if item[1] >= min_rows] or ranked[:1]
        if max_categories > 0:
            kept = kept[:max_categories]
    categories = sorted(category for category, _ in kept)
    if policy == "infrequent":
        categories.append(INFREQUENT)
    return KeptCategories(
        categories=categories,
        impute=ranked[0][0],
        folded_categories=len(ranked) - len(kept),
        folded_rows=sum(counts.values()) - sum(count for _, count in kept),
    )


def resolve_unknown(
    codes: np.ndarray, policy: str, categories: list[str], column: str, source: str, value_of: Callable[[int], object]
) -> np.ndarray:
    """`codes` with every unknown entry (< 0) resolved by `policy`: the reserved level, -1 (all zeros) or an error.

    `value_of(row)` gives a row's raw value, for the error message.
    """
    unknown = codes < 0
    if not unknown.any():
        return codes
    if policy == "infrequent":
        resolved = codes.copy()
        resolved[unknown] = len(categories) - 1
        return resolved
    if policy == "ignore":
        return codes
    value = value_of(int(np.argmax(unknown)))
    raise InputError(
        f"{source}: column '{column}' has unknown category {value!r} ({int(unknown.sum())} row(s)); "
        f"known categories: {listed(categories)}; set unknown_categories to 'infrequent' or 'ignore' to accept "
        "new values"
    )


def one_hot(codes: np.ndarray, width: int) -> np.ndarray:
    """One float64 column per level; a code of -1 (an ignored category) is a row of zeros."""
    encoded = np.zeros((len(codes), width), dtype=np.float64)
    known = codes >= 0
    encoded[np.flatnonzero(known), codes[known]] = 1.0
    return encoded


def unknown_category_lines(counts: Mapping[str, int]) -> list[str]:
    """Markdown lines for an evaluation report: rows per column whose category had no level of its own."""
    if not counts:
        return []
    listed_counts = ", ".join(f"`{column}` {rows}" for column, rows in counts.items())
    return ["", f"Rows with a category unseen or rare in training (reserved level or zeros): {listed_counts}."]


__all__ = [
    "CATEGORY_POLICIES",
    "INFREQUENT",
    "SHOWN_VALUES",
    "CategoryPolicy",
    "KeptCategories",
    "check_policy",
    "kept_categories",
    "listed",
    "one_hot",
    "parse_column_policies",
    "resolve_unknown",
    "unknown_category_lines",
]
