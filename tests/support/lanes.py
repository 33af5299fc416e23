"""Which tests are `slow`: the rules behind `make test-fast` (everything else) and `make test` (everything).

A test is slow when it needs a service or a process tree that takes seconds to start or finish:
a whole pipeline through kfp.local's subprocesses, torchrun workers (DDP, FSDP, elastic restarts),
SLURM, PostgreSQL, Spark, containers, the infrastructure binaries, a wheel build. The rules go by
fixture, by marker, by module and, inside otherwise quick modules, by test; `mark_slow_tests`
applies them at collection (tests/conftest.py). A new test that starts such things belongs here.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

SLOW_FIXTURES = {
    "slurm": "a SLURM cluster",
    "postgres": "a PostgreSQL server",
    "reader_url": "a PostgreSQL server",
    "postgres_url": "a PostgreSQL server",
    "trained_model": "a model trained by a torchrun worker",
    "mlflow_server": "an MLflow tracking server",
}
"""Fixtures that start a service or a training run."""

POSTGRES_PARAMETRIZED = ("store_url", "module_store_url")
"""Store fixtures parametrized over SQLite and PostgreSQL: their PostgreSQL cases are slow."""

SLOW_MARKERS = (
    "spark",
    "infra",
    "containers",
    "browser",
    "tracking",
    "tuning",
    "resume",
    "chaos",
    "local_equivalence",
    "deploy",
)
"""Lanes with their own make target: slow here too."""

SLOW_MODULES = {
    "tests/pipelines/test_batch_prediction.py": "whole pipelines through kfp.local",
    "tests/pipelines/test_champion_challenger.py": "whole pipelines through kfp.local",
    "tests/pipelines/test_hyperparameter_sweep.py": "whole pipelines through kfp.local",
    "tests/pipelines/test_image_classifier.py": "whole pipelines through kfp.local",
    "tests/pipelines/test_tabular_classifier.py": "whole pipelines through kfp.local",
    "tests/pipelines/test_tabular_regressor.py": "whole pipelines through kfp.local",
    "tests/local/test_retry_resume_parallel.py": "runs retried, killed and resumed, tasks in parallel",
    "tests/training/test_local_ddp.py": "DDP workers",
    "tests/training/test_elastic_restart.py": "DDP workers killed and restarted",
    "tests/training/test_engine_options.py": "FSDP and DDP workers",
    "tests/training/test_class_weighting.py": "torchrun workers on an imbalanced table",
    "tests/scheduler/test_training_queue.py": "torchrun workers through the queue",
    "tests/scheduler/test_crash_safety.py": "scheduler processes killed and restarted",
    "tests/components/training/test_pytorchjob_end_to_end.py": "torchrun workers behind a fake operator",
    "tests/components/evaluation/test_regression_core.py": "a regressor trained by a torchrun worker",
    "tests/test_packaging.py": "a wheel build and a fresh virtualenv",
    "tests/components/tuning/test_tuning_study.py": "tuning trials as torchrun jobs",
    "tests/components/tuning/test_tuning_queue.py": "tuning trials as torchrun jobs through the queue",
}
"""Modules whose every test is slow."""

SLOW_TESTS = {
    "tests/cli/test_cli.py::test_run_local_reports_bad_input_without_a_traceback": "a pipeline through kfp.local",
    "tests/local/test_run_report.py::test_a_failed_local_run_writes_its_report_naming_the_failed_task": (
        "a pipeline through kfp.local"
    ),
    "tests/components/test_component_specs.py::test_preprocess_from_yaml": "a component through kfp.local",
    "tests/components/test_component_specs.py::test_train_from_yaml": "a component through kfp.local",
    "tests/components/test_component_specs.py::test_evaluate_from_yaml": "a component through kfp.local",
    "tests/components/test_component_specs.py::test_deploy_from_yaml": "a component through kfp.local",
    "tests/components/training/test_training_core.py::test_user_model_factory_trains": "torchrun workers",
    "tests/components/training/test_training_core.py::test_cnn_on_digits": "torchrun workers",
    "tests/serving/test_deploy_local.py::test_deploy_local_serves_reattaches_and_stops": "server processes",
    "tests/serving/test_deploy_local.py::test_redeploy_of_another_model_replaces_the_server": "server processes",
    "tests/serving/test_deploy_local.py::test_bad_model_dir_fails_fast_with_the_logged_reason": "a server process",
    "tests/serving/test_deploy_local.py::test_model_that_cannot_predict_fails_at_warm_up": "a server process",
    "tests/serving/test_batching.py::test_sigterm_finishes_requests_in_flight": "a server process",
    "tests/serving/test_fuzz.py::test_fuzzed_bodies_never_get_a_5xx": "1,200 fuzzed requests over HTTP",
    "tests/local/test_caching.py::test_same_content_hits_and_a_changed_byte_misses": "pipelines run four times",
}
"""Single slow tests in otherwise quick modules (node ids without parameters)."""


def slow_reason(item: pytest.Item, root: Path) -> str | None:
    """Why `item` is slow, or None when it belongs to the fast lane."""
    path = Path(str(item.path)).resolve().relative_to(root).as_posix()
    node = f"{path}::{item.name.partition('[')[0]}"
    fixtures: Iterable[str] = getattr(item, "fixturenames", ())
    params = getattr(getattr(item, "callspec", None), "params", {})
    reasons = [SLOW_MODULES.get(path), SLOW_TESTS.get(node)]
    reasons += [f"{marker} lane" for marker in SLOW_MARKERS if item.get_closest_marker(marker)]
    reasons += [SLOW_FIXTURES[name] for name in fixtures if name in SLOW_FIXTURES]
    reasons += ["a PostgreSQL server" for name in POSTGRES_PARAMETRIZED if params.get(name) == "postgresql"]
    found = [reason for reason in reasons if reason]
    return found[0] if found else None


def mark_slow_tests(items: list[pytest.Item], root: Path) -> None:
    """Add the `slow` marker to every collected test that `slow_reason` names."""
    for item in items:
        if slow_reason(item, root) is not None:
            item.add_marker(pytest.mark.slow)


__all__ = ["SLOW_FIXTURES", "SLOW_MARKERS", "SLOW_MODULES", "SLOW_TESTS", "mark_slow_tests", "slow_reason"]
