"""The explain extension over HTTP: a planted signal ranks first per raw column, and bad requests are named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import requests
from tiny_model import planted_table, write_tiny_model

from kubeforge.model_format import load_model
from kubeforge.serving.app import create_app
from kubeforge.serving.explain_route import MAX_EXPLAIN_ROWS, MAX_STEPS

from .conftest import loopback_session, running, v2_request

NAME = "planted"
COLUMNS = ["size", "color", "shade", "weight"]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return planted_table(rows=240).drop(columns=["label"])


@pytest.fixture(scope="module")
def explain_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    frame = planted_table(rows=240)
    model_dir = write_tiny_model(frame, "label", tmp_path_factory.mktemp("planted") / "model", epochs=3)
    app = create_app({NAME: load_model(model_dir, name=NAME)})
    with running(app) as url:
        yield url


def _post(url: str, payload: Any, path: str = f"/v2/models/{NAME}/explain") -> requests.Response:
    with loopback_session() as session:
        return session.post(f"{url}{path}", json=payload, timeout=60)


def test_integrated_gradients_rank_the_deciding_column_first(explain_url: str, rows: pd.DataFrame) -> None:
    sample = rows.head(40)
    response = _post(explain_url, {**v2_request(sample, request_id="r-1"), "parameters": {"steps": 16}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == (NAME, "1", "r-1")
    assert (body["method"], body["steps"], body["columns"]) == ("integrated_gradients", 16, COLUMNS)
    assert body["importance"][0]["column"] == "color", body["importance"]
    assert len(body["explanations"]) == 40
    assert all(list(row["attributions"]) == COLUMNS for row in body["explanations"])  # raw columns, one-hot folded
    firsts = [max(row["attributions"], key=lambda c: abs(row["attributions"][c])) for row in body["explanations"]]
    assert firsts.count("color") > len(firsts) / 2
    infer = _post(explain_url, v2_request(sample), path=f"/v2/models/{NAME}/infer").json()
    [predictions] = [tensor["data"] for tensor in infer["outputs"] if tensor["name"] == "predictions"]
    assert [row["prediction"] for row in body["explanations"]] == predictions


def test_permutation_on_instances_ranks_it_first_too(explain_url: str, rows: pd.DataFrame) -> None:
    instances = rows.head(MAX_EXPLAIN_ROWS).to_dict(orient="records")
    response = _post(explain_url, {"instances": instances, "parameters": {"method": "permutation"}})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "permutation" and "steps" not in body
    assert body["importance"][0]["column"] == "color", body["importance"]


def test_the_server_metadata_declares_the_extension(explain_url: str) -> None:
    with loopback_session() as session:
        assert "explain" in session.get(f"{explain_url}/v2", timeout=10).json()["extensions"]
        response = session.get(f"{explain_url}/v2/models/{NAME}/explain", timeout=10)
    assert (response.status_code, response.headers["allow"]) == (405, "POST")


def _instances(rows: pd.DataFrame, count: int, **parameters: Any) -> dict[str, Any]:
    return {"instances": rows.head(count).to_dict(orient="records"), "parameters": parameters}


@pytest.mark.parametrize(
    ("case", "status", "fragment"),
    [
        ("too_many_rows", 413, f"instances: {MAX_EXPLAIN_ROWS + 1} rows exceed the explain limit"),
        ("too_many_tensor_rows", 413, f"inputs: {MAX_EXPLAIN_ROWS + 1} rows exceed"),
        ("too_many_steps", 400, f"parameters.steps: {MAX_STEPS + 1} is not a whole number from 1 to {MAX_STEPS}"),
        ("zero_steps", 400, "parameters.steps: 0"),
        ("steps_as_text", 400, "parameters.steps: '8'"),
        ("unknown_method", 400, "parameters.method: 'shap' is not a method"),
        ("unknown_parameter", 400, "parameters: unknown key(s) 'step'"),
        ("permutation_of_one_row", 400, "instances: permutation shuffles columns among rows"),
        ("missing_column", 400, "'color'"),
        ("both_forms", 400, 'either "inputs" (v2 tensors) or "instances"'),
        ("not_json", 400, "request body: not valid JSON"),
    ],
)
def test_bad_requests_are_refused_naming_the_field(
    explain_url: str, rows: pd.DataFrame, case: str, status: int, fragment: str
) -> None:
    payloads: dict[str, Any] = {
        "too_many_rows": _instances(rows, MAX_EXPLAIN_ROWS + 1),
        "too_many_tensor_rows": v2_request(rows.head(MAX_EXPLAIN_ROWS + 1)),
        "too_many_steps": _instances(rows, 2, steps=MAX_STEPS + 1),
        "zero_steps": _instances(rows, 2, steps=0),
        "steps_as_text": _instances(rows, 2, steps="8"),
        "unknown_method": _instances(rows, 2, method="shap"),
        "unknown_parameter": _instances(rows, 2, step=8),
        "permutation_of_one_row": _instances(rows, 1, method="permutation"),
        "missing_column": {"instances": rows.drop(columns=["color"]).head(2).to_dict(orient="records")},
        "both_forms": {**_instances(rows, 2), **v2_request(rows.head(2))},
    }
    with loopback_session() as session:
        url = f"{explain_url}/v2/models/{NAME}/explain"
        if case == "not_json":
            response = session.post(url, data=b"{rows", timeout=30)
        else:
            response = session.post(url, json=payloads[case], timeout=30)
    assert response.status_code == status, response.text
    assert fragment in response.json()["error"], response.json()["error"]


def test_an_unknown_model_is_404(explain_url: str, rows: pd.DataFrame, tmp_path: Path) -> None:
    response = _post(explain_url, _instances(rows, 2), path="/v2/models/nope/explain")
    assert response.status_code == 404 and "'nope'" in response.json()["error"]
