"""The train/validation/test assignment rule every preprocessing backend computes identically.

A row's place depends only on its position in the input (0-based row number), the seed and its
class, so pandas, DuckDB and Spark put every row in the same split without sharing any state:

1. ``key = mix(row_number, seed)``: a bijection on ``[0, 2**31)`` built from multiplications by
   odd constants and xor-shifts, all within 62 bits, so the same integer arithmetic runs in
   numpy, DuckDB SQL and Spark SQL without overflow. Distinct rows get distinct keys.
2. Within each class (classification) or over all rows (regression), rows are ranked by key.
   With ``n`` rows in the class, the first ``floor(n * test + 0.5)`` ranks go to test, the next
   ``floor(n * validation + 0.5)`` to validation and the rest to train: an exact stratified split.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

MASK = (1 << 31) - 1
_MULTIPLIERS = (0x5BD1E995 & MASK, 0x2C1B3C6D, 0x297A2D39)
_SHIFTS = (16, 13, 16)
Dialect = Literal["duckdb", "spark"]
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


def seed_offset(seed: int) -> int:
    """The seed's contribution to a key, folded into 31 bits."""
    return (seed * 0x9E3779B1 + 0x7F4A7C15) & MASK


def split_keys(row_numbers: np.ndarray, seed: int) -> np.ndarray:
    """The keys of 0-based row numbers (int64 array) for `seed`."""
    keys = (row_numbers.astype(np.int64) + seed_offset(seed)) & MASK
    for multiplier, shift in zip(_MULTIPLIERS, _SHIFTS, strict=True):
        keys = (keys * multiplier) & MASK
        keys = keys ^ (keys >> shift)
    return keys


def split_key_sql(row_number: str, seed: int, dialect: Dialect) -> str:
    """The same key as an SQL expression over the BIGINT expression `row_number`."""
    key = f"(({row_number} + {seed_offset(seed)}) & {MASK})"
    for multiplier, shift in zip(_MULTIPLIERS, _SHIFTS, strict=True):
        product = f"(({key} * {multiplier}) & {MASK})"
        shifted = f"({product} >> {shift})" if dialect == "duckdb" else f"shiftright({product}, {shift})"
        key = f"xor({product}, {shifted})" if dialect == "duckdb" else f"({product} ^ {shifted})"
    return key


def held_out_counts(class_rows: int, validation: float, test: float) -> tuple[int, int]:
    """(validation rows, test rows) for a class of `class_rows` rows."""
    return math.floor(class_rows * validation + 0.5), math.floor(class_rows * test + 0.5)


def split_codes(ranks: np.ndarray, class_rows: np.ndarray, validation: float, test: float) -> np.ndarray:
    """Split code per row (0 train, 1 validation, 2 test) from its 0-based rank within its class."""
    n_test = np.floor(class_rows * test + 0.5)
    n_validation = np.floor(class_rows * validation + 0.5)
    return np.where(ranks < n_test, 2, np.where(ranks < n_test + n_validation, 1, 0)).astype(np.int8)


def split_code_sql(rank: str, class_rows: str, validation: float, test: float) -> str:
    """`split_codes` as an SQL CASE expression over a 0-based rank and the class size."""
    n_test = f"floor({class_rows} * {test!r} + 0.5)"
    n_validation = f"floor({class_rows} * {validation!r} + 0.5)"
    return f"CASE WHEN {rank} < {n_test} THEN 2 WHEN {rank} < {n_test} + {n_validation} THEN 1 ELSE 0 END"


__all__ = [
    "MASK",
    "SPLIT_CODES",
    "Dialect",
    "held_out_counts",
    "seed_offset",
    "split_code_sql",
    "split_codes",
    "split_key_sql",
    "split_keys",
]
