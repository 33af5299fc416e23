"""`kubeforge check PIPELINE --target kfp|vertex|local`: what the target would ignore or reject.

The pipeline is compiled exactly as `kubeforge compile` does, and the compiled spec (plus its
kfp-kubernetes platform spec, when there is one) is read rule by rule. Each finding names the
task, what happens on that target, and the fix. Errors mean the run would be rejected or would
silently lose something the pipeline relies on; warnings mean a setting is ignored or bounded.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

Target = Literal["kfp", "vertex", "local"]
TARGETS: tuple[Target, ...] = ("kfp", "vertex", "local")
# Vertex AI Pipelines runs each task on one machine; its largest general-purpose shapes.
VERTEX_MAX_CPUS = 96.0
VERTEX_MAX_MEMORY_GB = 624.0
_PINNED = re.compile(r"(@sha256:[0-9a-f]{64}$)|(:(?!latest$)[\w][\w.-]{0,127}$)")


@dataclass(frozen=True)
class Finding:
    """One portability problem: how bad, which task, what happens, and the fix."""

    severity: Literal["error", "warning"]
    task: str
    rule: str
    message: str
    fix: str

    def line(self) -> str:
        """One line for the terminal."""
        return f"{self.severity}: [{self.rule}] task {self.task}: {self.message} Fix: {self.fix}"


@dataclass(frozen=True)
class _Task:
    path: str
    spec: dict[str, Any]
    component: dict[str, Any]
    executor: dict[str, Any]
    kubernetes: dict[str, Any]
    dag: dict[str, Any]


def check_pipeline(pipeline: Callable[..., Any], target: Target) -> list[Finding]:
    """Compile `pipeline` and return every finding for `target`, errors first."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, not {target!r}")
    spec, platform = _compiled(pipeline)
    findings = [finding for task in _tasks(spec, platform) for rule in _RULES for finding in rule(task, target)]
    return sorted(findings, key=lambda finding: (finding.severity != "error", finding.task, finding.rule))


def _compiled(pipeline: Callable[..., Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    from kfp import compiler

    with tempfile.TemporaryDirectory(prefix="kubeforge-check-") as folder:
        path = Path(folder) / "pipeline.yaml"
        compiler.Compiler().compile(pipeline, str(path))
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    spec = documents[0]
    platform: dict[str, Any] = next((doc for doc in documents[1:] if "platforms" in doc), {})
    return spec, platform


def _tasks(spec: dict[str, Any], platform: dict[str, Any]) -> Iterator[_Task]:
    components = spec.get("components", {})
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    kubernetes = platform.get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})

    def walk(dag: dict[str, Any], prefix: str) -> Iterator[_Task]:
        for name, task in dag.get("tasks", {}).items():
            component = components.get(task.get("componentRef", {}).get("name", ""), {})
            path = f"{prefix}{task.get('taskInfo', {}).get('name', name)}"
            label = component.get("executorLabel", "")
            yield _Task(path, task, component, executors.get(label, {}), kubernetes.get(label, {}), dag)
            if "dag" in component:
                yield from walk(component["dag"], f"{path}/")

    yield from walk(spec.get("root", {}).get("dag", {}), "")


def _collected(task: _Task, target: Target) -> Iterator[Finding]:
    loops = {name for name, spec in task.dag.get("tasks", {}).items() if _is_loop(spec)}
    inputs = task.spec.get("inputs", {})
    producers = {
        value.get(kind, {}).get("producerTask")
        for group in ("parameters", "artifacts")
        for value in inputs.get(group, {}).values()
        for kind in ("taskOutputParameter", "taskOutputArtifact")
    }
    if target == "kfp" and producers & loops:
        yield Finding(
            "warning",
            task.path,
            "collected",
            "gathers a ParallelFor's outputs with dsl.Collected; KFP open-source backends without fan-in support "
            "reject the run at compile-to-workflow time.",
            "check that the backend supports dsl.Collected, or write each iteration's output under a shared "
            "prefix and pass the prefix to an aggregating task.",
        )


def _is_loop(spec: dict[str, Any]) -> bool:
    return "parameterIterator" in spec or "artifactIterator" in spec


def _retry(task: _Task, target: Target) -> Iterator[Finding]:
    if target == "vertex" and task.spec.get("retryPolicy", {}).get("maxRetryCount"):
        yield Finding(
            "warning",
            task.path,
            "retry",
            "sets set_retry; Vertex AI Pipelines does not apply the task's retry policy, so a failure fails the run.",
            "make the component resumable and retry inside it (or re-run the pipeline with caching on), "
            "and drop set_retry for Vertex.",
        )


def _kubernetes_options(task: _Task, target: Target) -> Iterator[Finding]:
    if not task.kubernetes or target == "kfp":
        return
    options = ", ".join(sorted(task.kubernetes))
    if target == "vertex":
        yield Finding(
            "error",
            task.path,
            "kfp-kubernetes",
            f"uses kfp-kubernetes options ({options}); Vertex AI has no Kubernetes API under its tasks, so "
            "volumes, secrets and node placement it relies on are missing.",
            "read data and credentials through Cloud Storage and Secret Manager in the component, and keep "
            "kfp-kubernetes calls out of the Vertex variant of the pipeline.",
        )
    else:
        yield Finding(
            "warning",
            task.path,
            "kfp-kubernetes",
            f"uses kfp-kubernetes options ({options}); local runs ignore them.",
            "make sure the task finds what those options provide (files, environment) on this machine.",
        )


def _resources(task: _Task, target: Target) -> Iterator[Finding]:
    resources = task.executor.get("container", {}).get("resources", {})
    cpus = max(float(resources.get("cpuLimit", 0) or 0), float(resources.get("cpuRequest", 0) or 0))
    memory_gb = max(float(resources.get("memoryLimit", 0) or 0), float(resources.get("memoryRequest", 0) or 0))
    if target == "vertex" and (cpus > VERTEX_MAX_CPUS or memory_gb > VERTEX_MAX_MEMORY_GB):
        yield Finding(
            "error",
            task.path,
            "resources",
            f"asks for {cpus:g} CPUs and {memory_gb:g} GB; Vertex AI caps a task at {VERTEX_MAX_CPUS:g} CPUs "
            f"and {VERTEX_MAX_MEMORY_GB:g} GB and rejects the run.",
            "lower set_cpu_limit/set_memory_limit, or run the work as a distributed training job.",
        )
    from kubeforge.local.resources import machine_memory_bytes

    local_cpus, local_gb = float(_cpu_count()), machine_memory_bytes() / 1e9
    if target == "local" and (cpus > local_cpus or memory_gb > local_gb):
        yield Finding(
            "warning",
            task.path,
            "resources",
            f"asks for {cpus:g} CPUs and {memory_gb:g} GB; this machine has {local_cpus:g} CPUs and "
            f"{local_gb:.0f} GB, so the local runner clamps the task to the whole machine and runs it alone.",
            "expect it to run slower than on the cluster, or lower the limits for local runs.",
        )


def _cpu_count() -> int:
    return os.cpu_count() or 1


def _image(task: _Task, target: Target) -> Iterator[Finding]:
    image = task.executor.get("container", {}).get("image")
    if not image:
        return
    name = image.rsplit("/", 1)[-1]
    if target != "local" and not _PINNED.search(name):
        yield Finding(
            "error",
            task.path,
            "image",
            f"runs image {image!r}, which is not pinned: each run may pull different code.",
            "use a version tag (not 'latest') or a digest (image@sha256:...).",
        )
    if target == "local" and "kfp.dsl.executor_main" not in " ".join(task.executor["container"].get("command", [])):
        yield Finding(
            "error",
            task.path,
            "container-component",
            f"is a container component (image {image!r}); the local runner runs only Python components.",
            "run it with kfp.local's DockerRunner, or wrap the program in a Python component.",
        )


_RULES: tuple[Callable[[_Task, Target], Iterator[Finding]], ...] = (
    _collected,
    _retry,
    _kubernetes_options,
    _resources,
    _image,
)

__all__ = ["TARGETS", "Finding", "Target", "check_pipeline"]
