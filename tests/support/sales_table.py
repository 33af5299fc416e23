"""A small generated sales table (numeric with nulls, integer, categorical, boolean, binary label)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def sales_table(rows: int, seed: int) -> pd.DataFrame:
    """`rows` sales: amount (10 % null), visits, channel, member and the label `bought` (30 % ones)."""
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 50.0, rows)
    amount[rng.random(rows) < 0.1] = np.nan
    return pd.DataFrame(
        {
            "amount": amount,
            "visits": rng.integers(0, 30, rows),
            "channel": rng.choice(["web", "shop", "phone"], rows),
            "member": rng.random(rows) < 0.4,
            "bought": rng.choice([0, 1], rows, p=[0.7, 0.3]),
        }
    )


__all__ = ["sales_table"]
