"""The study's storage: SQLite beside the outputs, or a real PostgreSQL server with the password from PGPASSWORD.

A study opened again on the same storage (a retried task) keeps its trials; the password never
appears in the URL, the error or the study's name.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import optuna
import psycopg
import pytest
from postgres_server import postgres_available, running_postgres

from kubeforge.components.tuning.optuna.study import TuneParams, opened_study
from kubeforge.errors import InputError

PASSWORD = "tuner-s3cret"
SPACE = json.dumps({"learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "log": True}})


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A database owned by role `tuner`, which must log in with a password; its URL has none."""
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed: run `make system-deps` (installs postgresql-15)")
    with running_postgres() as server:
        with psycopg.connect(server.url(), autocommit=True) as connection:
            connection.execute(f"CREATE ROLE tuner LOGIN PASSWORD '{PASSWORD}'")
            connection.execute("CREATE DATABASE studies OWNER tuner")
        hba = server.root / "data" / "pg_hba.conf"
        hba.write_text("host all tuner 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        with psycopg.connect(server.url(), autocommit=True) as connection:
            connection.execute("SELECT pg_reload_conf()")
        yield f"postgresql://tuner@127.0.0.1:{server.port}/studies"


def _one_finished_trial(study: optuna.Study) -> None:
    trial = study.ask()
    trial.suggest_float("learning_rate", 0.001, 0.1, log=True)
    study.tell(trial, 0.5)


@pytest.mark.parametrize("where", ["sqlite", pytest.param("postgresql", marks=pytest.mark.tuning)])
def test_a_reopened_study_keeps_its_trials(
    where: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = ""
    if where == "postgresql":
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("PGPASSWORD", PASSWORD)
    params = TuneParams(search_space=SPACE, storage_url=url, sampler="random")
    study_dir = tmp_path / "best-study"
    with opened_study(params, study_dir, None) as study:
        _one_finished_trial(study)
    with opened_study(params, study_dir, None) as again:
        assert [trial.state for trial in again.trials] == [optuna.trial.TrialState.COMPLETE]
        assert again.study_name.startswith("kubeforge-")
    assert (where == "postgresql") != (study_dir / "study.db").is_file()


@pytest.mark.tuning
def test_a_wrong_password_fails_naming_the_storage_not_the_secret(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PGPASSWORD", "not-the-password")
    params = TuneParams(search_space=SPACE, storage_url=postgres_url)
    with (
        pytest.raises(InputError, match="storage_url: cannot open the study storage") as refused,
        opened_study(params, tmp_path, None),
    ):
        pass
    assert "not-the-password" not in str(refused.value) and PASSWORD not in str(refused.value)


@pytest.mark.parametrize(
    ("sampler", "pruner"), [("tpe", "median"), ("random", "none"), ("grid", "hyperband"), ("cmaes", "median")]
)
def test_every_sampler_and_pruner_drives_an_ask_and_tell_study(sampler: str, pruner: str, tmp_path: Path) -> None:
    from kubeforge.components.tuning.optuna.search_space import parse_search_space

    text = json.dumps(
        {
            "learning_rate": {"type": "float", "low": 0.001, "high": 0.1, "step": 0.001},
            "batch_size": {"type": "int", "low": 16, "high": 64, "step": 16},
            "hidden_layers": {"type": "categorical", "choices": ["16", "64,32"]},
        }
    )
    space = parse_search_space(text)
    params = TuneParams(search_space=text, sampler=sampler, pruner=pruner, startup_trials=1, epochs=3, seed=0)
    with opened_study(params, tmp_path, space.grid() if sampler == "grid" else None) as study:
        for number in range(4):
            trial = study.ask()
            values = space.suggest(trial)
            assert 0.001 <= values["learning_rate"] <= 0.1 and values["batch_size"] in (16, 32, 48, 64)
            assert values["hidden_layers"] in ([16], [64, 32])
            for epoch in (1, 2, 3):
                trial.report(float(number) if number else 0.1, epoch)  # trial 0 best, the later ones worse
                if trial.should_prune():
                    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                    break
            else:
                study.tell(trial, float(number))
        states = [t.state for t in study.trials]
    assert states[0] is optuna.trial.TrialState.COMPLETE and len(states) == 4
    if pruner == "median":  # worse than trial 0 after epoch 1: pruned there
        assert states[1:] == [optuna.trial.TrialState.PRUNED] * 3
    if pruner == "none":
        assert set(states) == {optuna.trial.TrialState.COMPLETE}
