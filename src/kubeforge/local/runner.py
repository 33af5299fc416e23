"""kubeforge's local runner: kfp.local's orchestration, with warm workers, content caching and resume.

kfp.local compiles nothing itself: calling a pipeline after `kfp.local.init` runs its compiled
spec through kfp's pipeline orchestrator, DAG orchestrators (If/Elif/Else, ParallelFor,
Collected, ExitHandler, nested pipelines), task executor (caching, `set_retry` with backoff,
importers) and task dispatcher (placeholders, executor input, outputs). This runner keeps all of
that and swaps four pieces for the length of one run:

- the subprocess task handler, for one that forks tasks from a warm worker (handler.py);
- the cache singleton, for a content-keyed, self-verifying subclass of kfp's cache (cache.py);
- kfp's two DAG walkers, for ones that start every ready task at once with kfp's semantics
  (dag.py; ParallelFor loops there use kfp's ParallelExecutor without its two-thread cap);
- `task_executor.execute_single_task`, wrapped to admit tasks against cores and memory, record
  finished tasks for `--resume`, and report progress.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from kfp import dsl, local
from kfp.local import cache as kfp_cache
from kfp.local import executor_input_utils, status, subprocess_task_handler
from kfp.local.orchestrator import dag_orchestrator, enhanced_dag_orchestrator, task_executor
from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils

from kubeforge.errors import InputError
from kubeforge.local import dag
from kubeforge.local.cache import ContentCache
from kubeforge.local.forkserver import retry_failed_start
from kubeforge.local.handler import WarmTaskHandler
from kubeforge.local.journal import RunRecord, load_record, new_record, state_root
from kubeforge.local.progress import Progress
from kubeforge.local.report import publish_report
from kubeforge.local.resources import ResourcePool, task_demand

log = logging.getLogger(__name__)
_ONE_RUN_AT_A_TIME = threading.Lock()  # kfp.local's configuration is process-global


@dataclass
class RunOptions:
    """How to run: caching, resuming, the machine's share, warm workers, progress."""

    cache: bool = True
    resume: str | None = None
    cpus: float | None = None
    memory_bytes: float | None = None
    warm_workers: bool = True
    progress: Progress = field(default_factory=Progress)


@dataclass
class _Run:
    record: RunRecord
    journal: ContentCache
    resumed: ContentCache | None
    cache: ContentCache | None
    pool: ResourcePool
    progress: Progress


def pipeline_name(pipeline: Callable[..., Any]) -> str:
    """The name kfp gives the pipeline's runs."""
    spec = getattr(pipeline, "pipeline_spec", None)
    return str(spec.pipeline_info.name) if spec is not None else getattr(pipeline, "__name__", "pipeline")


def execute(
    pipeline: Callable[..., Any], arguments: dict[str, Any], pipeline_root: Path, options: RunOptions
) -> RunRecord:
    """Run `pipeline` with `arguments` under `pipeline_root`; return the run's record.

    Raises kfp.local's RuntimeError when a task failed (the record then says `failed`).
    """
    name = pipeline_name(pipeline)
    resumed = load_record(pipeline_root, options.resume) if options.resume else None
    if resumed is not None:
        if resumed.pipeline != name:
            raise InputError(f"--resume {options.resume}: that run is of pipeline {resumed.pipeline!r}, not {name!r}")
        arguments = {**resumed.arguments, **arguments}
    run_name = f"{name}-{datetime.datetime.now().strftime('%Y-%m-%d-%H-%M-%S-%f')}"
    record = new_record(pipeline_root, run_name, name, arguments)
    cache_root = state_root(pipeline_root) / "cache"
    run = _Run(
        record=record,
        journal=record.journal(),
        resumed=resumed.journal() if resumed is not None else None,
        cache=ContentCache(str(cache_root)) if options.cache else None,
        pool=ResourcePool(options.cpus, options.memory_bytes),
        progress=options.progress,
    )
    with _ONE_RUN_AT_A_TIME, _kfp_local_for(run, options, pipeline_root, cache_root, run_name):
        run.progress.event("run-started", run=run_name)
        try:
            pipeline(**arguments)
        except BaseException as exc:
            record.finish("failed")
            publish_report(record, pipeline, error=exc)
            run.progress.event("run-failed", run=run_name)
            raise
    record.finish("succeeded")
    publish_report(record, pipeline)
    run.progress.event("run-finished", run=run_name)
    return record


@contextmanager
def _kfp_local_for(run: _Run, options: RunOptions, root: Path, cache_root: Path, run_name: str) -> Iterator[None]:
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        raise_on_error=True,
        enable_caching=options.cache,
        cache_root=str(cache_root),
    )
    if run.cache is not None:
        kfp_cache._cache_singleton, kfp_cache._cache_singleton_root = run.cache, str(cache_root)
    original = task_executor.execute_single_task
    with ExitStack() as patches:
        patches.enter_context(
            mock.patch.object(executor_input_utils, "get_local_pipeline_resource_name", lambda _name: run_name)
        )
        patches.enter_context(mock.patch.object(task_executor, "execute_single_task", _admitted(original, run)))
        patches.enter_context(mock.patch.object(dag_orchestrator, "run_dag", dag.run_dag))
        patches.enter_context(mock.patch.object(enhanced_dag_orchestrator, "run_enhanced_dag", dag.run_enhanced_dag))
        if options.warm_workers:
            retry_failed_start()  # a worker that could not start for an earlier run gets another chance
            patches.enter_context(mock.patch.object(subprocess_task_handler, "SubprocessTaskHandler", WarmTaskHandler))
        try:
            yield
        finally:
            kfp_cache.reset_local_cache_singleton()


def _admitted(original: Callable[..., Any], run: _Run) -> Callable[..., Any]:
    """kfp's execute_single_task, reusing resumed tasks, admitted by the pool, recorded when done."""

    def execute_single_task(**kwargs: Any) -> tuple[dict[str, Any], status.Status]:
        task_name: str = kwargs["task_name"]
        task_spec = kwargs["task_spec"]
        component_spec = kwargs["components"][task_spec.component_ref.name]
        executor_spec = kwargs["executors"][component_spec.executor_label]
        if executor_spec.WhichOneof("spec") != "container":  # importers run in-process, instantly
            return original(**kwargs)  # type: ignore[no-any-return]
        key = _task_key(run.journal, task_spec.component_ref.name, executor_spec, task_spec, kwargs["io_store"])
        outputs = run.resumed.get(key) if run.resumed is not None else None
        how = "resumed"
        if outputs is not None:
            run.progress.event("task-started", task_name)
            run.record.task_started(task_name)
        else:
            with run.pool.hold(task_demand(executor_spec)):
                run.progress.event("task-started", task_name)  # running once admitted, not while it waits
                run.record.task_started(task_name)
                if run.cache is not None:
                    run.cache.take_hit()
                outputs, task_status = original(**kwargs)
            if task_status != status.Status.SUCCESS:
                run.record.task_failed(task_name)
                run.progress.event("task-failed", task_name)
                return outputs, task_status
            how = "cached" if run.cache is not None and run.cache.take_hit() else "ran"
        try:
            run.journal.put(key, outputs)
            run.record.task_finished(task_name, how, _output_folder(outputs, kwargs))
        except OSError as exc:  # a full disk costs this task's reuse on --resume, not the run
            log.warning("could not record that task %s finished (%s); --resume will run it again", task_name, exc)
        run.progress.event("task-finished" if how == "ran" else f"task-{how}", task_name)
        return outputs, status.Status.SUCCESS

    return execute_single_task


def _task_key(journal: ContentCache, component: str, executor_spec: Any, task_spec: Any, io_store: Any) -> str:
    """The same key kfp's task executor computes for its cache (arguments resolved the same way)."""
    container = executor_spec.container
    key: str = journal.compute_key(
        component_name=component,
        image=container.image,
        full_command=[*container.command, *container.args],
        arguments=OrchestratorUtils.make_task_arguments(task_inputs_spec=task_spec.inputs, io_store=io_store),
        env_vars={variable.name: variable.value for variable in container.env},
        custom_cache_key=task_spec.caching_options.cache_key or None,
    )
    return key


def _output_folder(outputs: dict[str, Any], kwargs: dict[str, Any]) -> str:
    for value in outputs.values():
        first = value[0] if isinstance(value, list) and value else value
        if isinstance(first, dsl.Artifact) and first.uri:
            return str(Path(first.uri).parent)
    return str(
        executor_input_utils.construct_local_task_root(
            pipeline_root=kwargs["pipeline_root"],
            pipeline_resource_name=kwargs["pipeline_resource_name"],
            task_resource_name=executor_input_utils.get_local_task_resource_name(
                kwargs["task_spec"].component_ref.name
            ),
        )
    )


__all__ = ["RunOptions", "execute", "pipeline_name"]
