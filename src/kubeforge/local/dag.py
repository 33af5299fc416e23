"""Every ready task of a DAG at once, with kfp.local's DAG semantics.

kfp.local walks a DAG in topological order and waits for each task before it starts the next
(`dag_orchestrator.run_dag` for plain DAGs, `enhanced_dag_orchestrator.run_enhanced_dag` when
there is control flow). The two replacements here keep every decision kfp makes (which tasks
are exit tasks, when a condition is evaluated, which upstream failure skips a task, what goes
into the IO store, what the DAG returns) and change only when a task starts: as soon as every
task it depends on has ended. Each task still runs through kfp's own `execute_task`,
`_run_parallel_for_task` and `execute_single_task`, whose wrapper in the runner admits it
against the resource pool, so the pool bounds how many run at once.

A plain DAG stops at its first failure as kfp's `run_dag` does: no further task starts, the ones
already running finish, the DAG fails. A DAG with control flow goes on with every task that
does not depend on the failed one, skips those that do (unless they ignore upstream failures),
runs its exit tasks, then fails, as kfp's `run_enhanced_dag` does.
"""

from __future__ import annotations

import concurrent.futures
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kfp.local import io, status
from kfp.local.orchestrator import enhanced_dag_orchestrator as kfp_enhanced
from kfp.local.orchestrator import task_executor
from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
from kfp.pipeline_spec import pipeline_spec_pb2

from kubeforge.local.resources import WideParallelExecutor

Outcome = tuple[dict[str, Any], status.Status]
Result = TypeVar("Result")
_AFTER_ALL_UPSTREAM = pipeline_spec_pb2.PipelineTaskSpec.TriggerPolicy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED
_SKIPPED = "skipped"  # its condition was false, or it was a loop (which stores its own outputs)
_UPSTREAM_FAILED = "upstream-failed"
_LOOP_FAILED = "loop-failed"


def run_when_ready(
    dependencies: dict[str, set[str]],
    run: Callable[[str], Result],
    finished: Callable[[str, Result], bool],
) -> None:
    """Run every name once all the names it depends on have finished, all ready names at once.

    `run` is called in a worker thread; `finished` in the calling thread, before any task that
    depends on that name is started. When `finished` returns False no further name starts and
    this returns once the running ones have ended. A dependency on a name not in `dependencies`
    is ignored.
    """
    waiting = {name: needs & dependencies.keys() for name, needs in dependencies.items()}
    ended: set[str] = set()
    running: dict[concurrent.futures.Future[Result], str] = {}
    go_on = True
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(waiting))) as pool:
        while True:
            ready = [name for name, needs in waiting.items() if needs <= ended] if go_on else []
            for name in ready:
                del waiting[name]
                running[pool.submit(run, name)] = name
            if not running:
                return
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                ended.add(name)
                go_on = finished(name, future.result()) and go_on


@dataclass(frozen=True)
class _Scope:
    """The arguments kfp passes to every task of one DAG."""

    pipeline_resource_name: str
    components: dict[str, Any]
    executors: dict[str, Any]
    io_store: io.IOStore
    pipeline_root: str
    runner: Any
    unique_pipeline_id: str
    fail_stack: list[str]

    def task_arguments(self, task_name: str, task_spec: Any) -> dict[str, Any]:
        return {
            "task_name": task_name,
            "task_spec": task_spec,
            "pipeline_resource_name": self.pipeline_resource_name,
            "components": self.components,
            "executors": self.executors,
            "io_store": self.io_store,
            "pipeline_root": self.pipeline_root,
            "runner": self.runner,
            "unique_pipeline_id": self.unique_pipeline_id,
            "fail_stack": self.fail_stack,
        }


def _scope(dag_component_spec: Any, dag_arguments: dict[str, Any], parent_io_store: Any, **kfp: Any) -> _Scope:
    """kfp's DAG preamble: the DAG's IO store, chained to the enclosing one, holding its inputs."""
    io_store = io.IOStore(parent=parent_io_store)
    arguments = OrchestratorUtils.join_user_inputs_and_defaults(
        dag_arguments=dag_arguments, dag_inputs_spec=dag_component_spec.input_definitions
    )
    for name, value in arguments.items():
        io_store.put_parent_input(name, value)
    return _Scope(io_store=io_store, **kfp)


def _store_outputs(scope: _Scope, task_name: str, outputs: dict[str, Any]) -> None:
    for key, output in outputs.items():
        scope.io_store.put_task_output(task_name, key, output)


def run_dag(dag_component_spec: Any, dag_arguments: dict[str, Any], parent_io_store: Any = None, **kfp: Any) -> Outcome:
    """kfp.local's `dag_orchestrator.run_dag` (same keyword arguments, same result), ready tasks at once.

    `kfp` holds the arguments kfp passes through to every task: pipeline_resource_name, executors,
    components, pipeline_root, runner, unique_pipeline_id and fail_stack.
    """
    scope = _scope(dag_component_spec, dag_arguments, parent_io_store, **kfp)
    components, fail_stack = scope.components, scope.fail_stack
    tasks = dag_component_spec.dag.tasks
    failed: list[str] = []

    def run(task_name: str) -> Outcome:
        task_spec = tasks[task_name]
        component_spec = components[task_spec.component_ref.name]
        if component_spec.WhichOneof("implementation") == "dag":
            arguments = OrchestratorUtils.make_task_arguments(task_spec.inputs, scope.io_store)
            return run_dag(component_spec, arguments, scope.io_store, **kfp)
        return task_executor.execute_single_task(**scope.task_arguments(task_name, task_spec))  # type: ignore[no-any-return]

    def finished(task_name: str, outcome: Outcome) -> bool:
        outputs, task_status = outcome
        if task_status == status.Status.FAILURE:
            failed.append(task_name)
            fail_stack.append(task_name)
            return False
        if task_status != status.Status.SUCCESS:
            raise ValueError(f"Got unknown task status: {task_status.name}")
        _store_outputs(scope, task_name, outputs)
        return True

    run_when_ready({name: set(spec.dependent_tasks) for name, spec in tasks.items()}, run, finished)
    if failed:
        return {}, status.Status.FAILURE
    return _dag_outputs(dag_component_spec, scope)


def run_enhanced_dag(
    dag_component_spec: Any, dag_arguments: dict[str, Any], parent_io_store: Any = None, **kfp: Any
) -> Outcome:
    """kfp.local's `run_enhanced_dag` (If/Elif/Else, ParallelFor, Collected, ExitHandler, nested
    pipelines; same keyword arguments, same result), ready tasks at once; `kfp` as in `run_dag`."""
    scope = _scope(dag_component_spec, dag_arguments, parent_io_store, **kfp)
    tasks = dag_component_spec.dag.tasks
    exit_tasks = [name for name, spec in tasks.items() if _is_exit_task(spec)]
    body = {name: spec for name, spec in tasks.items() if name not in exit_tasks}
    failed: set[str] = set()
    loops = WideParallelExecutor()

    def run(task_name: str) -> Outcome | str:
        task_spec = body[task_name]
        upstream_failed = sorted(failed.intersection(task_spec.dependent_tasks))
        if upstream_failed and task_spec.trigger_policy.strategy != _AFTER_ALL_UPSTREAM:
            logging.info(f"Skipping task {task_name}: upstream task(s) {upstream_failed} failed.")
            return _UPSTREAM_FAILED
        if task_spec.trigger_policy.condition:
            if not kfp_enhanced.ConditionEvaluator.evaluate_condition(
                task_spec.trigger_policy.condition, scope.io_store
            ):
                logging.info(f"Skipping conditional task {task_name} (condition evaluated to False)")
                return _SKIPPED
        elif task_spec.WhichOneof("iterator") and kfp_enhanced._has_valid_iterator(task_spec):
            loop_failed = kfp_enhanced._run_parallel_for_task(
                **scope.task_arguments(task_name, task_spec), parallel_executor=loops
            )
            return _LOOP_FAILED if loop_failed else _SKIPPED
        return kfp_enhanced.execute_task(**scope.task_arguments(task_name, task_spec))  # type: ignore[no-any-return]

    def finished(task_name: str, outcome: Outcome | str) -> bool:
        if outcome in (_UPSTREAM_FAILED, _LOOP_FAILED):
            failed.add(task_name)
            if outcome == _UPSTREAM_FAILED:
                scope.io_store.put_task_status(task_name, "FAILED")
        elif isinstance(outcome, tuple):
            _record_task(scope, task_name, outcome, failed)
        return True

    run_when_ready({name: set(spec.dependent_tasks) for name, spec in body.items()}, run, finished)
    if failed and not exit_tasks:
        return {}, status.Status.FAILURE
    exit_failed: set[str] = set()
    for task_name in exit_tasks:  # after the whole body, one after another, as kfp runs them
        _record_task(
            scope,
            task_name,
            kfp_enhanced.execute_task(**scope.task_arguments(task_name, tasks[task_name])),
            exit_failed,
        )
    if failed or exit_failed:
        return {}, status.Status.FAILURE
    return _dag_outputs(dag_component_spec, scope)


def _dag_outputs(dag_component_spec: Any, scope: _Scope) -> Outcome:
    """A DAG's declared outputs, read from its IO store, with the success status."""
    outputs = OrchestratorUtils.get_dag_outputs(
        dag_outputs_spec=dag_component_spec.dag.outputs, io_store=scope.io_store
    )
    return outputs, status.Status.SUCCESS


def _is_exit_task(task_spec: Any) -> bool:
    """An ExitHandler's exit task (not an `ignore_upstream_failure` one: only it takes a final status)."""
    return bool(
        task_spec.trigger_policy.strategy == _AFTER_ALL_UPSTREAM
        and kfp_enhanced._has_task_final_status_input(task_spec)
    )


def _record_task(scope: _Scope, task_name: str, outcome: Outcome, failed: set[str]) -> None:
    """What kfp does after a task ran: its status and outputs into the IO store, or the failure noted."""
    outputs, task_status = outcome
    scope.io_store.put_task_status(task_name, "SUCCEEDED" if task_status == status.Status.SUCCESS else "FAILED")
    if task_status == status.Status.FAILURE:
        scope.fail_stack.append(task_name)
        failed.add(task_name)
    else:
        _store_outputs(scope, task_name, outputs)


__all__ = ["run_dag", "run_enhanced_dag", "run_when_ready"]
