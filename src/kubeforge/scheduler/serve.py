"""Run the scheduler: the REST API and, unless told otherwise, the dispatcher in a thread beside it.

`python -m kubeforge.scheduler.serve --store sqlite:///DB --backend local --port 8765` is
what `kubeforge queue serve` runs. Several API replicas can share one PostgreSQL store;
only the replica holding the lease dispatches, the others wait for it.
"""

from __future__ import annotations

import argparse
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from kubeforge.errors import InputError
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.base import Backend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.http_server import serve_forever
from kubeforge.scheduler.resources import Resources, parse_cpu, parse_memory
from kubeforge.scheduler.store import open_store

BACKEND_NAMES = ("local", "slurm", "kubernetes")
ADMIN_TOKEN_ENV = "KUBEFORGE_ADMIN_TOKEN"
STORE_URL_ENV = "KUBEFORGE_STORE_URL"


@dataclass(frozen=True)
class ServeOptions:
    """Where state lives, which backend runs jobs, and where the API listens."""

    store: str
    backend: str = "local"
    state_dir: str = ".kubeforge/scheduler"
    host: str = "127.0.0.1"
    port: int = 8765
    dispatch: bool = True
    api: bool = True
    grace_s: float = 30.0
    cpu: str = ""
    memory: str = ""
    gpu: int = -1
    namespace: str = "default"
    kueue_queue: str = ""


def make_backend(options: ServeOptions) -> Backend:
    """The backend named in the options, with the capacity given there or read from the machine/cluster."""
    if options.backend not in BACKEND_NAMES:
        raise InputError(f"backend: {options.backend!r} is not one of {', '.join(BACKEND_NAMES)}")
    if options.backend == "kubernetes":
        from kubeforge.scheduler.backends.kubernetes import JobPodPolicy, KubernetesBackend, cluster_capacity
        from kubeforge.training.backends.kubernetes import default_api_client

        api_client = default_api_client()
        given = options.cpu and options.memory and options.gpu >= 0  # then no need to list the nodes
        found = Resources() if given else cluster_capacity(api_client)
        policy = JobPodPolicy.from_environment(os.environ)
        return KubernetesBackend(_capacity(options, found), options.namespace, options.kueue_queue, api_client, policy)
    from kubeforge.scheduler.backends.local import machine_capacity

    capacity = _capacity(options, machine_capacity())
    if options.backend == "slurm":
        from kubeforge.scheduler.backends.slurm import SlurmBackend

        return SlurmBackend(Path(options.state_dir) / "slurm", capacity=capacity)
    from kubeforge.scheduler.backends.local import LocalBackend

    return LocalBackend(Path(options.state_dir) / "local", capacity=capacity)


def _capacity(options: ServeOptions, found: Resources) -> Resources:
    return Resources(
        parse_cpu(options.cpu, "cpu") if options.cpu else found.cpu_m,
        parse_memory(options.memory, "memory") if options.memory else found.memory_mb,
        options.gpu if options.gpu >= 0 else found.gpu,
    )


def serve(options: ServeOptions, admin_token: str = "") -> None:
    """Serve until interrupted."""
    store = open_store(options.store)
    if admin_token:
        store.add_token(admin_token, "admin", admin=True)
    backend = make_backend(options)
    dispatcher = Dispatcher(store, backend, grace_s=options.grace_s) if options.dispatch else None
    stop = threading.Event()
    thread: threading.Thread | None = None
    if dispatcher is not None:
        thread = threading.Thread(target=dispatcher.run, args=(stop,), name="kubeforge-dispatcher", daemon=True)
        thread.start()
    try:
        if options.api:
            serve_forever(SchedulerAPI(store, dispatcher, logs=backend.logs), options.host, options.port)
        elif thread is not None:
            thread.join()
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)
        store.close()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m kubeforge.scheduler.serve", description=__doc__)
    parser.add_argument(
        "--store",
        default=os.environ.get(STORE_URL_ENV, ""),
        help=f"sqlite:///PATH, a file path, or postgresql://... (default: ${STORE_URL_ENV}: no password in argv)",
    )
    parser.add_argument("--backend", default="local", choices=BACKEND_NAMES)
    parser.add_argument("--state-dir", default=".kubeforge/scheduler")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--no-dispatch", action="store_true", help="API only (another replica dispatches)")
    parser.add_argument("--no-api", action="store_true", help="dispatcher only")
    parser.add_argument("--grace-s", type=float, default=30.0)
    parser.add_argument("--cpu", default="", help="capacity override, e.g. 4 or 500m")
    parser.add_argument("--memory", default="", help="capacity override, e.g. 16Gi")
    parser.add_argument("--gpu", type=int, default=-1)
    parser.add_argument("--namespace", default="default", help="kubernetes backend: where jobs are created")
    parser.add_argument("--kueue-queue", default="", help="kubernetes backend: hand admission to this Kueue queue")
    args = parser.parse_args(argv)
    if not args.store:
        parser.error(f"--store: required (or set {STORE_URL_ENV})")
    logging.basicConfig(level=logging.WARNING)
    options = ServeOptions(
        store=args.store,
        backend=args.backend,
        state_dir=args.state_dir,
        host=args.host,
        port=args.port,
        dispatch=not args.no_dispatch,
        api=not args.no_api,
        grace_s=args.grace_s,
        cpu=args.cpu,
        memory=args.memory,
        gpu=args.gpu,
        namespace=args.namespace,
        kueue_queue=args.kueue_queue,
    )
    serve(options, admin_token=os.environ.get(ADMIN_TOKEN_ENV, ""))


if __name__ == "__main__":
    main()

__all__ = ["ADMIN_TOKEN_ENV", "BACKEND_NAMES", "STORE_URL_ENV", "ServeOptions", "main", "make_backend", "serve"]
