"""Admission of concurrent tasks against this machine's cores and memory, and wider ParallelFor loops.

A task holds what it asked for (`set_cpu_limit`/`set_cpu_request`, `set_memory_limit`/
`set_memory_request`; one core and no memory when it asked for nothing) while it runs; a task
that asks for more than the machine has is clamped to the whole machine, so it runs alone
rather than never. kfp.local's ParallelExecutor caps every loop at two threads; the subclass
here lets a loop start as many iterations as its `parallelism` allows and leaves the real
bound to the pool.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kfp.local.orchestrator.enhanced_dag_orchestrator import ParallelExecutor

_LOOP_THREADS = 64
_GB = 1e9


@dataclass(frozen=True)
class Demand:
    """What one task holds while it runs."""

    cpus: float = 1.0
    memory_bytes: float = 0.0


def machine_memory_bytes() -> float:
    """Physical memory of this machine."""
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def task_demand(executor_spec: Any) -> Demand:
    """The cores and memory a container task asked for, from its compiled resources."""
    if executor_spec.WhichOneof("spec") != "container":
        return Demand(cpus=0.0)
    resources = executor_spec.container.resources
    cpus = max(resources.cpu_limit, resources.cpu_request)
    memory = max(resources.memory_limit, resources.memory_request) * _GB
    return Demand(cpus=cpus if cpus > 0 else 1.0, memory_bytes=memory)


class ResourcePool:
    """A counting lock over cores and memory; `hold` waits until a task's demand fits."""

    def __init__(self, cpus: float | None = None, memory_bytes: float | None = None) -> None:
        self.cpus = float(cpus if cpus is not None else (os.cpu_count() or 1))
        self.memory_bytes = memory_bytes if memory_bytes is not None else machine_memory_bytes()
        self._used = Demand(0.0, 0.0)
        self._changed = threading.Condition()

    @contextmanager
    def hold(self, demand: Demand) -> Iterator[None]:
        """Block until `demand` (clamped to the machine) fits, hold it for the body, then release."""
        wanted = Demand(min(demand.cpus, self.cpus), min(demand.memory_bytes, self.memory_bytes))
        with self._changed:
            self._changed.wait_for(lambda: self._fits(wanted))
            self._used = Demand(self._used.cpus + wanted.cpus, self._used.memory_bytes + wanted.memory_bytes)
        try:
            yield
        finally:
            with self._changed:
                self._used = Demand(self._used.cpus - wanted.cpus, self._used.memory_bytes - wanted.memory_bytes)
                self._changed.notify_all()

    def _fits(self, wanted: Demand) -> bool:
        return (
            self._used.cpus + wanted.cpus <= self.cpus + 1e-9
            and self._used.memory_bytes + wanted.memory_bytes <= self.memory_bytes + 1
        )


class WideParallelExecutor(ParallelExecutor):  # type: ignore[misc]
    """kfp.local's ParallelExecutor without its two-thread cap: a loop's `parallelism` (or, when it
    sets none, the resource pool) bounds how many iterations run at once."""

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__(max_workers)
        self.conservative_max = _LOOP_THREADS
        self.max_workers = min(max_workers or _LOOP_THREADS, _LOOP_THREADS)


__all__ = ["Demand", "ResourcePool", "WideParallelExecutor", "machine_memory_bytes", "task_demand"]
