"""Exact order statistics and numpy-identical linear quantiles of a float64 stream, in bounded memory.

`order_statistics` finds the values at given ranks by radix selection on the values' sort keys:
counts per 16-bit key digit narrow each wanted rank to a range of keys small enough to hold, and
that range is then selected in memory. `linear_quantile` interpolates between the two ranks
`quantile_ranks` names exactly as `np.quantile` (method linear) does, so a streamed fit equals
the in-memory one bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

DIGIT_BITS = 16
DIGITS = 1 << DIGIT_BITS
SIGN = np.uint64(1 << 63)


def sort_keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys whose order is the order of the (non-NaN) float64 `values`."""
    bits = values.view(np.uint64)
    negative = (bits & SIGN) != 0
    keys: np.ndarray = np.where(negative, ~bits, bits | SIGN)
    return keys


def first_digit_counts(values: np.ndarray) -> np.ndarray:
    """Counts of the (non-NaN) `values` per first 16-bit digit of their sort keys: the selection's first pass."""
    return np.bincount((sort_keys(values) >> np.uint64(64 - DIGIT_BITS)).astype(np.intp), minlength=DIGITS)


def _key_value(key: int) -> float:
    """The float64 whose sort key is `key`."""
    bits = key & ~(1 << 63) if key & (1 << 63) else ~key & ((1 << 64) - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def quantile_ranks(count: int, q: float) -> tuple[int, int]:
    """The two 0-based ranks numpy's linear quantile `q` of `count` values interpolates between."""
    virtual = (count - 1) * np.float64(q)
    previous = min(int(np.floor(virtual)), count - 1)
    return previous, min(previous + 1, count - 1)


def linear_quantile(count: int, q: float, at: dict[int, float]) -> float:
    """`np.quantile(values, q)` (method linear) from the values `at` its two ranks, computed as numpy does."""
    virtual = (count - 1) * np.float64(q)
    previous, following = quantile_ranks(count, q)
    a, b = np.float64(at[previous]), np.float64(at[following])
    gamma = virtual - np.floor(virtual) if virtual < count - 1 else np.float64(virtual - previous)
    difference = b - a
    return float(b - difference * (1 - gamma) if gamma >= 0.5 else a + difference * gamma)


def order_statistics(
    read: Callable[[], Iterator[np.ndarray]], ranks: list[int], top: np.ndarray, room: int
) -> dict[int, float]:
    """The values at the 0-based ascending `ranks` of the stream `read()` yields, by radix selection.

    `top` holds the counts per first 16-bit digit of the sort keys. Each further pass either
    collects the keys of a narrowed range (when at most `room` of them, all ranges together) and
    selects in memory, or counts the next digit within the range; after four digits a range is
    a single key.
    """
    found: dict[int, float] = {}
    # per unresolved rank: (digits known, key prefix, rank within the prefix's keys, digit counts there)
    pending = {rank: _narrow(0, 0, rank, top) for rank in ranks}
    while pending:
        for rank, (level, prefix, _, _) in list(pending.items()):
            if level == 64 // DIGIT_BITS:  # the whole key is known
                found[rank] = _key_value(prefix)
                del pending[rank]
        if not pending:
            break
        ranges = {(level, prefix): size for level, prefix, _, size in pending.values()}
        collect: set[tuple[int, int]] = set()
        held = 0
        for key_range, size in sorted(ranges.items(), key=lambda item: item[1]):
            if held + size <= room:
                collect.add(key_range)
                held += size
        parts: dict[tuple[int, int], list[np.ndarray]] = {key_range: [] for key_range in collect}
        counts = {key_range: np.zeros(DIGITS, dtype=np.int64) for key_range in ranges if key_range not in collect}
        for values in read():
            keys = sort_keys(values)
            for level, prefix in ranges:
                inside = keys[(keys >> np.uint64(64 - DIGIT_BITS * level)) == np.uint64(prefix)]
                if (level, prefix) in collect:
                    parts[(level, prefix)].append(inside)
                else:
                    shift = np.uint64(64 - DIGIT_BITS * (level + 1))
                    digits = ((inside >> shift) & np.uint64(DIGITS - 1)).astype(np.intp)
                    counts[(level, prefix)] += np.bincount(digits, minlength=DIGITS)
        for rank, (level, prefix, within, _) in list(pending.items()):
            if (level, prefix) in collect:
                keys = np.concatenate(parts[(level, prefix)])
                found[rank] = _key_value(int(np.partition(keys, within)[within]))
                del pending[rank]
            else:
                pending[rank] = _narrow(level, prefix, within, counts[(level, prefix)])
    return found


def _narrow(level: int, prefix: int, within: int, counts: np.ndarray) -> tuple[int, int, int, int]:
    """The next digit's range holding the key of rank `within` (by that digit's `counts` in the range)."""
    cumulative = np.cumsum(counts)
    digit = int(np.searchsorted(cumulative, within, side="right"))
    before = int(cumulative[digit - 1]) if digit else 0
    return level + 1, (prefix << DIGIT_BITS) | digit, within - before, int(counts[digit])


__all__ = [
    "DIGITS",
    "DIGIT_BITS",
    "first_digit_counts",
    "linear_quantile",
    "order_statistics",
    "quantile_ranks",
    "sort_keys",
]
