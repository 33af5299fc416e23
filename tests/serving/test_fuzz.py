"""Fuzzing the three contracts over real HTTP: no request body, however wrong, gets a 5xx or stops the server."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import CATEGORICAL, MODEL_NAME, Server, TrainedModel, v2_request

FUZZ_EXAMPLES = 1200
_ROUTES = (f"/v2/models/{MODEL_NAME}/infer", "/predict", "/invocations")

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(["low", "mid", "high", "FP64", "BYTES", "INT64", "mean radius", CATEGORICAL]),
)
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
_tensor = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(["mean radius", CATEGORICAL, "mean area"]), _scalars),
        "shape": st.one_of(st.lists(st.integers(-2, 4), max_size=3), _json),
        "datatype": st.one_of(st.sampled_from(["FP32", "FP64", "INT32", "INT64", "BYTES", "BOOL", "FP16"]), _json),
        "data": st.one_of(st.lists(_scalars, max_size=4), st.lists(st.lists(_scalars, max_size=2), max_size=3), _json),
    }
)


def _mutations(valid: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A valid request with one input tensor replaced by a fuzzed one, or an instance field replaced."""
    inputs = valid["inputs"]
    return st.builds(
        lambda index, tensor: {**valid, "inputs": [*inputs[:index], tensor, *inputs[index + 1 :]]},
        st.integers(0, len(inputs) - 1),
        _tensor,
    )


def _instances(rows: pd.DataFrame) -> st.SearchStrategy[Any]:
    record = rows.iloc[0].to_dict()
    return st.builds(
        lambda key, value, extra: {"instances": [{**record, key: value}, *extra]},
        st.sampled_from(list(record)),
        _scalars,
        st.lists(_json, max_size=2),
    )


def test_fuzzed_bodies_never_get_a_5xx(server: Server, trained: TrainedModel) -> None:
    rows = trained.features.head(2)
    valid = v2_request(rows)
    bodies = st.one_of(
        st.binary(max_size=64),
        _json.map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries({"inputs": st.lists(_tensor, max_size=3)}).map(lambda v: json.dumps(v).encode()),
        _mutations(valid).map(lambda value: json.dumps(value).encode()),
        _instances(rows).map(lambda value: json.dumps(value).encode()),
        st.lists(st.lists(st.text(max_size=5), max_size=4), max_size=3).map(
            lambda rows: "\n".join(",".join(row) for row in rows).encode()
        ),
    )
    seen: dict[int, int] = {}

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(body=bodies, route=st.sampled_from(_ROUTES), csv=st.booleans())
    def check(body: bytes, route: str, csv: bool) -> None:
        headers = {"Content-Type": "text/csv" if csv else "application/json"}
        response = server.session.post(f"{server.url}{route}", data=body, headers=headers, timeout=30)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        assert response.status_code < 500, (route, body, response.text)
        if response.status_code >= 400:
            assert response.json()["error"]

    check()
    assert sum(seen.values()) >= 1000
    assert seen.get(200, 0) > 0 and seen.get(400, 0) > 0, seen  # the fuzz reaches both sides
    assert server.session.get(f"{server.url}/v2/health/ready", timeout=10).status_code == 200
