"""Run the scheduler: the REST API and, unless told otherwise, the dispatcher in a thread beside it.

`python -m kubeforge.scheduler.serve --store sqlite:///DB --backend local --port 8765` is
what `kubeforge queue serve` runs. Several API replicas can share one PostgreSQL store;
only the replica holding the lease dispatches, the others wait for it.

A store URL that carries a password never goes on the command line (every local user can
read a process's arguments): it comes from $KUBEFORGE_STORE_URL or a file (`--store-file`,
e.g. a mounted Kubernetes secret). The admin token comes from $KUBEFORGE_ADMIN_TOKEN, which
is read once and removed from the environment; it replaces the previous one from there.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from kubeforge import settings
from kubeforge.errors import InputError, KubeforgeError
from kubeforge.resources import Resources, parse_cpu, parse_memory
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.base import Backend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.http_server import serve_forever, tls_context
from kubeforge.scheduler.store import open_store, redact

BACKEND_NAMES = ("local", "slurm", "kubernetes")
ADMIN_TOKEN_ENV = settings.ADMIN_TOKEN.name
STORE_URL_ENV = settings.STORE_URL.name


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
    tls_cert: str = ""
    tls_key: str = ""

    def __repr__(self) -> str:
        return f"ServeOptions(store={redact(self.store)!r}, backend={self.backend!r}, port={self.port})"


def store_url(store: str = "", store_file: str = "") -> str:
    """The store URL from `--store-file`, else `--store`, else $KUBEFORGE_STORE_URL; a password on the
    command line is refused (InputError), since every local user can read a process's arguments."""
    if store_file:
        try:
            return Path(store_file).read_text().strip()
        except OSError as exc:
            raise InputError(f"--store-file {store_file!r}: cannot read it ({exc.strerror})") from None
    if store:
        if redact(store) != store:
            raise InputError(
                f"--store carries a password, which any local user can read in the process list; "
                f"put the URL in ${STORE_URL_ENV} or a file given to --store-file"
            )
        return store
    found = settings.STORE_URL.read()
    if not found:
        raise InputError(f"no store: give --store PATH|URL, --store-file FILE or set ${STORE_URL_ENV}")
    return found


def take_admin_token() -> str:
    """$KUBEFORGE_ADMIN_TOKEN, removed from this process's environment so that nothing it starts inherits it."""
    return settings.ADMIN_TOKEN.take()


def make_backend(options: ServeOptions) -> Backend:
    """The backend named in the options, with the capacity given there or read from the machine/cluster."""
    if options.backend not in BACKEND_NAMES:
        raise InputError(f"backend: {options.backend!r} is not one of {', '.join(BACKEND_NAMES)}")
    if options.backend == "kubernetes":
        from kubeforge.kube_client import default_api_client
        from kubeforge.scheduler.backends.kubernetes import JobPodPolicy, KubernetesBackend, cluster_capacity

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
    if bool(options.tls_cert) != bool(options.tls_key):
        raise InputError("--tls-cert and --tls-key go together: give both (PEM files) or neither")
    tls = tls_context(options.tls_cert, options.tls_key) if options.tls_cert else None
    store = open_store(options.store)
    if admin_token:  # replaces the admin token an earlier start took from the environment
        store.add_token(admin_token, "admin", admin=True, from_env=True)
    backend = make_backend(options)
    dispatcher = Dispatcher(store, backend, grace_s=options.grace_s) if options.dispatch else None
    stop = threading.Event()
    thread: threading.Thread | None = None
    if dispatcher is not None:
        thread = threading.Thread(target=dispatcher.run, args=(stop,), name="kubeforge-dispatcher", daemon=True)
        thread.start()
    try:
        if options.api:
            serve_forever(SchedulerAPI(store, dispatcher, logs=backend.log_range), options.host, options.port, tls=tls)
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
    parser.add_argument("--store", default="", help="sqlite:///PATH, a file path, or postgresql://USER@HOST/DB")
    parser.add_argument("--store-file", default="", help=f"a file holding the store URL (else ${STORE_URL_ENV})")
    parser.add_argument("--tls-cert", default="", help="serve HTTPS with this PEM certificate chain")
    parser.add_argument("--tls-key", default="", help="and this PEM private key")
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
    logging.basicConfig(level=logging.WARNING)
    options = ServeOptions(
        store=store_url(args.store, args.store_file),
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
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    # read once and removed: nothing this process starts (the supervisor, sbatch, jobs) can inherit it
    serve(options, admin_token=take_admin_token())


if __name__ == "__main__":
    try:
        main()
    except KubeforgeError as error:  # one line, not a traceback; the exit code says which kind
        detail = getattr(error, "detail", "")  # a store outage's cause, credentials redacted
        print(f"error: {error}" + (f" ({detail})" if detail else ""), file=sys.stderr)
        sys.exit(error.exit_code)

__all__ = [
    "ADMIN_TOKEN_ENV",
    "BACKEND_NAMES",
    "STORE_URL_ENV",
    "ServeOptions",
    "main",
    "make_backend",
    "serve",
    "store_url",
    "take_admin_token",
]
