"""`keys_at_ranks` against a full sort, with buckets holding many keys and groups of different sizes."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from kubeforge.preprocess_engine.ranked_keys import BUCKET_SHIFT, keys_at_ranks


def test_keys_at_ranks_match_a_full_sort() -> None:
    rng = np.random.default_rng(5)
    keys = rng.choice(1 << 22, size=60_000, replace=False)  # about 940 keys per bucket of 2**16
    groups = rng.choice(["a", "b", "c"], size=len(keys), p=[0.7, 0.25, 0.05])
    frame = pd.DataFrame({"grp": groups, "key": keys})
    with duckdb.connect() as connection:
        connection.register("keyed", frame)
        found = keys_at_ranks(connection, "keyed", lambda rows: [0, rows // 3, rows - 1, -1])
    assert set(found) == {"a", "b", "c"}
    for group, keys_found in found.items():
        ordered = np.sort(keys[groups == group])
        assert keys_found == [ordered[0], ordered[len(ordered) // 3], ordered[-1], -1]
    assert len({int(k) >> BUCKET_SHIFT for k in keys}) < len(keys) // 100
