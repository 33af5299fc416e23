"""`kubeforge check`: pipelines written to break each rule, and the catalogue passing for both targets."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from kfp import dsl
from kfp.dsl import Dataset, Output

from kubeforge.catalog.pipelines import builtin_pipelines, load_pipeline
from kubeforge.cli import cli
from kubeforge.local.check import Finding, check_pipeline


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def make(size: int, made: Output[Dataset]) -> None:
    """Write `size` bytes."""
    with open(made.path, "w") as handle:
        handle.write("x" * size)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def gather(parts: list[Dataset]) -> int:  # type: ignore[valid-type]
    """Count what a ParallelFor made."""
    return len(parts)


@dsl.component(base_image="python", install_kfp_package=False)
def untagged() -> None:
    """Runs on whatever `python` means on the day."""


@dsl.component(base_image="python:latest", install_kfp_package=False)
def latest() -> None:
    """Runs on whatever `python:latest` means on the day."""


@dsl.container_component
def shell() -> dsl.ContainerSpec:
    """A container component: a plain program in an image."""
    return dsl.ContainerSpec(image="busybox:1.36", command=["echo"], args=["hello"])


@dsl.pipeline(name="collects")
def collects() -> None:
    with dsl.ParallelFor([1, 2, 3]) as size:
        made = make(size=size)
    gather(parts=dsl.Collected(made.outputs["made"]))


@dsl.pipeline(name="retries")
def retries() -> None:
    make(size=1).set_retry(num_retries=3)


@dsl.pipeline(name="kubernetes-options")
def kubernetes_options() -> None:
    task = make(size=1)
    # What kfp-kubernetes' use_secret_as_env writes into the task's platform config.
    task.platform_config["kubernetes"] = {
        "secretAsEnv": [{"secretName": "db", "keyToEnv": [{"secretKey": "password"}]}]
    }


@dsl.pipeline(name="huge")
def huge() -> None:
    make(size=1).set_cpu_limit("128").set_memory_limit("1000G")


@dsl.pipeline(name="unpinned")
def unpinned() -> None:
    untagged()
    latest().after(make(size=1))


@dsl.pipeline(name="container")
def container() -> None:
    shell()


def _rules(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(finding.severity, finding.rule, finding.task) for finding in findings}


@pytest.mark.parametrize(
    ("pipeline", "target", "expected"),
    [
        (collects, "kfp", {("warning", "collected", "gather")}),
        (collects, "vertex", set()),
        (retries, "vertex", {("warning", "retry", "make")}),
        (retries, "kfp", set()),
        (kubernetes_options, "vertex", {("error", "kfp-kubernetes", "make")}),
        (kubernetes_options, "local", {("warning", "kfp-kubernetes", "make")}),
        (kubernetes_options, "kfp", set()),
        (huge, "vertex", {("error", "resources", "make")}),
        (huge, "local", {("warning", "resources", "make")}),
        (huge, "kfp", set()),
        (unpinned, "kfp", {("error", "image", "untagged"), ("error", "image", "latest")}),
        (unpinned, "vertex", {("error", "image", "untagged"), ("error", "image", "latest")}),
        (unpinned, "local", set()),
        (container, "local", {("error", "container-component", "shell")}),
        (container, "kfp", set()),
    ],
)
def test_each_rule_names_the_task(pipeline: object, target: str, expected: set[tuple[str, str, str]]) -> None:
    findings = check_pipeline(pipeline, target)  # type: ignore[arg-type]
    assert _rules(findings) == expected
    assert all(finding.fix and finding.message for finding in findings)


@pytest.mark.parametrize("target", ["kfp", "vertex"])
def test_the_catalogues_pipelines_have_no_errors(target: str) -> None:
    for name in builtin_pipelines():
        errors = [finding for finding in check_pipeline(load_pipeline(name), target) if finding.severity == "error"]  # type: ignore[arg-type]
        assert errors == [], name


def test_the_command_exits_non_zero_on_errors_only(tmp_path: Path) -> None:
    source = tmp_path / "pipelines.py"
    source.write_text(Path(__file__).read_text())
    failing = CliRunner().invoke(cli, ["check", f"{source}:unpinned", "--target", "vertex"])
    assert failing.exit_code == 1
    assert "error: [image] task untagged" in failing.output and "Fix: use a version tag" in failing.output

    warned = CliRunner().invoke(cli, ["check", "hyperparameter_sweep", "--target", "kfp"])
    assert warned.exit_code == 0, warned.output
    assert "0 error(s), 1 warning(s)" in warned.output
