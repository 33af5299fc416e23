"""The key of a given rank within each group, in DuckDB, without sorting or windowing all rows.

Split and sampling keys are distinct integers in ``[0, 2**31)``. Two narrow passes find the
key of rank ``r`` (0-based, ascending) within a group: the first counts keys per group and
bucket (the key's high bits), which locates the bucket holding rank ``r`` and the rank within
it; the second fetches only the keys of those buckets. Both passes are streaming aggregations
or filters, so memory stays bounded by the number of buckets, not by the number of rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import duckdb
import numpy as np

from kubeforge.preprocess_engine.duckdb_source import literal

BUCKET_SHIFT = 16  # 2**15 buckets of 2**16 keys each


def keys_at_ranks(
    connection: duckdb.DuckDBPyConnection, keyed: str, ranks_of: Callable[[int], Sequence[int]]
) -> dict[str, list[int]]:
    """Per group, the keys at the 0-based ranks `ranks_of(the group's row count)` lists, in that order.

    `keyed` is an SQL relation of columns ``grp`` (text) and ``key``. A rank must be below the
    group's row count; a negative rank (no such row) gives -1, below every key. Every group of
    `keyed` is in the result.
    """
    counts = connection.sql(
        f"SELECT grp, key >> {BUCKET_SHIFT} AS bucket, count(*) AS n FROM {keyed} GROUP BY ALL ORDER BY grp, bucket"
    ).fetchnumpy()
    groups, buckets, sizes = counts["grp"], counts["bucket"], counts["n"]
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]) if len(groups) else np.zeros(0, np.intp)
    located: dict[str, list[tuple[int, int] | None]] = {}  # per wanted rank: (bucket, rank within it)
    for start, end in zip(starts, np.r_[starts[1:], len(groups)], strict=True):
        cumulative = np.cumsum(sizes[start:end])
        spots: list[tuple[int, int] | None] = []
        for rank in ranks_of(int(cumulative[-1])):
            index = int(np.searchsorted(cumulative, rank, side="right"))
            before = int(cumulative[index - 1]) if index else 0
            spots.append((int(buckets[start + index]), rank - before) if rank >= 0 else None)
        located[str(groups[start])] = spots
    keys = _bucket_keys(connection, keyed, {(g, spot[0]) for g, spots in located.items() for spot in spots if spot})
    return {
        group: [keys[(group, spot[0])][spot[1]] if spot else -1 for spot in spots] for group, spots in located.items()
    }


def _bucket_keys(
    connection: duckdb.DuckDBPyConnection, keyed: str, buckets: set[tuple[str, int]]
) -> dict[tuple[str, int], list[int]]:
    """The sorted keys of each (group, bucket)."""
    keys: dict[tuple[str, int], list[int]] = {}
    if not buckets:
        return keys
    listed = ", ".join(f"({literal(group)}, {bucket})" for group, bucket in sorted(buckets))
    for group, key in connection.sql(
        f"SELECT k.grp, k.key FROM {keyed} AS k JOIN (VALUES {listed}) AS b(grp, bucket) "
        f"ON k.grp = b.grp AND k.key >> {BUCKET_SHIFT} = b.bucket"
    ).fetchall():
        keys.setdefault((group, int(key) >> BUCKET_SHIFT), []).append(int(key))
    for bucket_keys in keys.values():
        bucket_keys.sort()
    return keys


__all__ = ["BUCKET_SHIFT", "keys_at_ranks"]
