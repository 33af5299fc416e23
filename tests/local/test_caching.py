"""Caching in kubeforge's local runner: hits on the same content, misses on any change, never a bad entry."""

import json
from pathlib import Path

from kfp import dsl
from kfp.dsl import Dataset, Input, Metrics, Output

from kubeforge.local.journal import state_root
from kubeforge.local.runner import RunOptions
from kubeforge.local_runner import LocalRun, run_pipeline_locally


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def count_bytes(data: Input[Dataset], counted: Output[Dataset]) -> None:
    """Write the input's size and a fresh random number (so a re-run is told apart from a cache hit)."""
    import json
    import os
    import uuid

    with open(counted.path, "w") as handle:
        json.dump({"bytes": os.path.getsize(data.path), "run": uuid.uuid4().hex}, handle)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def summarise(counted: Input[Dataset], factor: int, summary: Output[Dataset]) -> None:
    """Scale the upstream count by `factor`."""
    import json

    with open(counted.path) as handle:
        upstream = json.load(handle)
    with open(summary.path, "w") as handle:
        json.dump({"scaled": upstream["bytes"] * factor}, handle)


def _pipeline(data_file: Path, cache_summary: bool = True):  # type: ignore[no-untyped-def]
    @dsl.pipeline(name="caching")
    def caching(factor: int = 2) -> None:
        data = dsl.importer(artifact_uri=str(data_file), artifact_class=Dataset)
        counted = count_bytes(data=data.output)
        summarise(counted=counted.outputs["counted"], factor=factor).set_caching_options(cache_summary)

    return caching


def _run(pipeline, root: Path, **options: object) -> LocalRun:  # type: ignore[no-untyped-def]
    return run_pipeline_locally(pipeline, {}, root, options=RunOptions(**options))  # type: ignore[arg-type]


def _marker(run: LocalRun) -> str:
    return str(json.loads((run.task_dir("count-bytes") / "counted").read_text())["run"])


def test_same_content_hits_and_a_changed_byte_misses(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    pipeline = _pipeline(data)
    first = _run(pipeline, tmp_path / "root")
    second = _run(pipeline, tmp_path / "root")
    assert first.count("ran") == 2 and second.count("cached") == 2
    assert _marker(second) == _marker(first)
    assert second.task_dir("count-bytes") == first.task_dir("count-bytes")  # outputs of the run that made them

    data.write_text("a,b\n1,3\n")  # same size, same path, one byte different
    third = _run(pipeline, tmp_path / "root")
    assert third.count("ran") == 2 and _marker(third) != _marker(first)

    copy = tmp_path / "elsewhere" / "copy.csv"
    copy.parent.mkdir()
    copy.write_bytes(data.read_bytes())  # the same bytes under another path: keyed by content, it hits
    fourth = _run(_pipeline(copy), tmp_path / "root")
    assert fourth.count("cached") == 2 and _marker(fourth) == _marker(third)


def test_a_changed_component_misses(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    _run(_pipeline(data), tmp_path / "root")

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def count_bytes(data: Input[Dataset], counted: Output[Dataset]) -> None:  # same name, new body
        import json
        import os
        import uuid

        with open(counted.path, "w") as handle:
            json.dump({"bytes": os.path.getsize(data.path) + 1, "run": uuid.uuid4().hex}, handle)

    @dsl.pipeline(name="caching")
    def changed() -> None:
        imported = dsl.importer(artifact_uri=str(data), artifact_class=Dataset)
        summarise(counted=count_bytes(data=imported.output).outputs["counted"], factor=2)

    run = _run(changed, tmp_path / "root")
    assert run.count("ran") == 2
    assert json.loads((run.task_dir("summarise") / "summary").read_text()) == {"scaled": 2 * (4 + 1)}


def test_caching_off_by_task_option_and_by_run_option(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    _run(_pipeline(data, cache_summary=False), tmp_path / "root")
    by_task = _run(_pipeline(data, cache_summary=False), tmp_path / "root")
    assert by_task.tasks["count-bytes"]["how"] == "cached" and by_task.tasks["summarise"]["how"] == "ran"

    by_run = _run(_pipeline(data), tmp_path / "root", cache=False)
    assert by_run.count("ran") == 2 and by_run.count("cached") == 0


def test_a_tampered_output_or_a_torn_entry_is_never_reused(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")
    pipeline = _pipeline(data)
    first = _run(pipeline, tmp_path / "root")

    (first.task_dir("summarise") / "summary").write_text('{"scaled": 999}')  # changed after it was cached
    second = _run(pipeline, tmp_path / "root")
    assert second.tasks["summarise"]["how"] == "ran"
    assert json.loads((second.task_dir("summarise") / "summary").read_text()) == {"scaled": 8}

    for entry in (state_root(tmp_path / "root") / "cache").glob("*.json"):
        entry.write_text(entry.read_text()[: len(entry.read_text()) // 2])  # cut short, as by a full disk
    third = _run(pipeline, tmp_path / "root")
    assert third.count("ran") == 2


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def score(counted: Input[Dataset], metrics: Output[Metrics]) -> None:
    """Log a metric: a Metrics artifact keeps it in metadata and never writes a file."""
    import json

    with open(counted.path) as handle:
        metrics.log_metric("bytes", json.load(handle)["bytes"])


def test_a_task_with_a_metrics_output_hits_too(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n1\n")

    @dsl.pipeline(name="scoring")
    def scoring() -> None:
        imported = dsl.importer(artifact_uri=str(data), artifact_class=Dataset)
        score(counted=count_bytes(data=imported.output).outputs["counted"])

    _run(scoring, tmp_path / "root")
    again = _run(scoring, tmp_path / "root")
    assert again.count("cached") == 2, again.tasks
