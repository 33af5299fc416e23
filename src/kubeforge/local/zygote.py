"""The fork server: a process that imports the heavy libraries once, then forks one child per task.

Started as `python -m kubeforge.local.zygote SOCKET`. It imports kfp, torch, pandas, pyarrow
and kubeforge's component cores before it accepts anything, and it never starts a thread, so a
fork copies a single-threaded, fully imported interpreter (its objects frozen out of the
garbage collector's reach, so a task's collections do not copy them). Per request it forks the
task (in its own process group), watches the task's pidfd and reports its exit status back,
all from one select loop; the zygote itself only accepts, forks and reaps, so a task that
crashes, leaks memory or changes global state dies with its own process and leaves the next
task a clean copy of the warm parent.

A request is a frame (8-byte length, then JSON: source, argv, env, cwd) sent with one file
descriptor attached (SCM_RIGHTS): the task's stdout and stderr. The zygote answers with
JSON lines: {"pid": N}, then {"exit_code": N} or {"signal": N}. When the client goes away
before the task ends, the zygote kills the task's process group.
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import importlib.util
import json
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = struct.Struct("!Q")
_REQUEST_SECONDS = 10.0
_BLAS: list[Any] = []
MAX_REQUEST_BYTES = 64 * 1024 * 1024
EXECUTOR_MODULE = "kfp.dsl.executor_main"
# Libraries that start worker threads when loaded, and the settings that keep them from it: OpenBLAS
# (numpy's and scipy's BLAS) and the jemalloc inside pyarrow. A task gets its BLAS threads back
# after the fork (see _restore_blas_threads); OpenMP pools (torch) only start on first use.
THREAD_FREE_IMPORTS = {"OPENBLAS_NUM_THREADS": "1", "JE_ARROW_MALLOC_CONF": "background_thread:false"}
PRELOAD = ("kfp", "kfp.dsl", "kfp.dsl.executor", "kfp.dsl.executor_main", "torch", "torch.distributed",
           "pandas", "pyarrow", "pyarrow.parquet", "numpy", "threadpoolctl", "kubeforge")  # fmt: skip


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import `modules` and every kubeforge component core; return the ones that failed to import."""
    failed = []
    for name in (*modules, *_component_cores()):
        try:
            importlib.import_module(name)
        except Exception:  # an optional dependency missing only costs warmth, not correctness
            failed.append(name)
    return failed


def _component_cores(catalogue: str = "kubeforge.components") -> list[str]:
    """The names of the catalogue's `core` modules, found by name only: the runner warms their imports
    but depends on none of them (the library never imports the catalogue)."""
    spec = importlib.util.find_spec(catalogue)
    if spec is None or not spec.submodule_search_locations:
        return []
    found = pkgutil.walk_packages(list(spec.submodule_search_locations), catalogue + ".", onerror=lambda _: None)
    return [info.name for info in found if info.name.endswith(".core")]


def thread_count() -> int:
    """How many OS threads this process has (forking is only safe with one)."""
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 1


def recv_request(conn: socket.socket) -> tuple[dict[str, Any], int]:
    """Read one request frame and its attached output descriptor."""
    header, fds, _, _ = socket.recv_fds(conn, HEADER.size, 1)
    while len(header) < HEADER.size:
        chunk = conn.recv(HEADER.size - len(header))
        if not chunk:
            raise ConnectionError("request header cut short")
        header += chunk
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise ConnectionError("a request must carry exactly one output descriptor")
    (size,) = HEADER.unpack(header)
    if size > MAX_REQUEST_BYTES:
        os.close(fds[0])
        raise ConnectionError(f"request of {size} bytes is over the {MAX_REQUEST_BYTES}-byte limit")
    body = bytearray()
    while len(body) < size:
        chunk = conn.recv(min(1 << 20, size - len(body)))
        if not chunk:
            os.close(fds[0])
            raise ConnectionError("request body cut short")
        body += chunk
    try:
        return json.loads(body), fds[0]
    except ValueError:
        os.close(fds[0])
        raise


def serve(path: str) -> None:
    """Accept requests on the Unix socket at `path` until stdin closes (the parent stops the worker or
    went away), then see the running tasks out: each ends on its own, or is killed if its client left."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    os.chmod(path, 0o600)
    server.listen(64)
    print(json.dumps({"ready": True, "threads": thread_count()}), flush=True)
    tasks = _Tasks()
    accepting = True
    while accepting or tasks.by_pidfd:
        listening: list[Any] = [server, sys.stdin] if accepting else []
        readable, _, _ = select.select([*listening, *tasks.watched()], [], [])
        for ready in readable:
            if ready is sys.stdin:
                accepting = accepting and bool(os.read(sys.stdin.fileno(), 1))
            elif ready is server:
                if accepting:
                    _start_task(server, tasks)
            elif isinstance(ready, (socket.socket, int)):
                tasks.on_ready(ready)
    server.close()


@dataclass
class _Task:
    pid: int
    conn: socket.socket
    pidfd: int


@dataclass
class _Tasks:
    """The running tasks, watched two ways: their pidfd (readable once the task ended) and their
    client's connection (readable with no data once the client went away)."""

    by_pidfd: dict[int, _Task] = field(default_factory=dict)
    by_conn: dict[socket.socket, _Task] = field(default_factory=dict)

    def watched(self) -> list[socket.socket | int]:
        return [*self.by_pidfd, *self.by_conn]

    def add(self, task: _Task) -> None:
        self.by_pidfd[task.pidfd] = task
        self.by_conn[task.conn] = task

    def on_ready(self, ready: socket.socket | int) -> None:
        if isinstance(ready, int):
            self._ended(self.by_pidfd.pop(ready))
        elif ready in self.by_conn and _client_gone(ready):  # take the task down with it
            _kill_group(self.by_conn.pop(ready).pid)

    def _ended(self, task: _Task) -> None:
        _, status = os.waitpid(task.pid, 0)
        os.close(task.pidfd)
        self.by_conn.pop(task.conn, None)
        ended = {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status) else {"exit_code": os.WEXITSTATUS(status)}
        with contextlib.suppress(OSError):
            _send(task.conn, ended)
        task.conn.close()

    def close_in_child(self) -> None:
        """In a forked task: drop the zygote's handles on the other tasks."""
        for task in self.by_pidfd.values():
            os.close(task.pidfd)
            task.conn.close()


def _start_task(server: socket.socket, tasks: _Tasks) -> None:
    """Accept one request and fork its task straight from this warm process."""
    conn, _ = server.accept()
    if not _same_user(conn):
        conn.close()
        return
    conn.settimeout(_REQUEST_SECONDS)  # a client that connects and stalls cannot stall the other tasks for long
    try:
        request, out_fd = recv_request(conn)
    except (OSError, ValueError):
        traceback.print_exc()
        conn.close()
        return
    pid = os.fork()
    if pid == 0:
        server.close()
        tasks.close_in_child()
        conn.close()
        _run_task(request, out_fd)  # never returns
    os.close(out_fd)
    tasks.add(_Task(pid, conn, os.pidfd_open(pid)))
    with contextlib.suppress(OSError):
        _send(conn, {"pid": pid})


def _client_gone(conn: socket.socket) -> bool:
    """True when the client closed its end (bytes it should not have sent are dropped)."""
    try:
        return not conn.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True


def _same_user(conn: socket.socket) -> bool:
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _, uid, _ = struct.unpack("3i", creds)
    return bool(uid == os.getuid())


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _send(conn: socket.socket, message: dict[str, int]) -> None:
    conn.sendall(json.dumps(message).encode() + b"\n")


def _run_task(request: dict[str, Any], out_fd: int) -> None:
    """In the task process: become `python -m kfp.dsl.executor_main` for this task, then exit."""
    code = 1
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        for stream in (1, 2):
            os.dup2(out_fd, stream)
        os.close(out_fd)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # pick up TMPDIR from the task's environment
        from kubeforge.errors import install_error_report_hook

        sys.excepthook = sys.__excepthook__  # the hook reports to the folder of the run asking now
        install_error_report_hook()
        _restore_blas_threads()
        code = _execute(request["source"], request["argv"])
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _restore_blas_threads() -> None:
    """Give the task the BLAS threads a fresh interpreter with its environment would have had
    (through the libraries the zygote found once, before it forked)."""
    wanted = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    threads = int(wanted) if wanted and wanted.isdigit() else (os.cpu_count() or 1)
    for library in _BLAS:
        library.set_num_threads(threads)


def _execute(source: str, argv: list[str]) -> int:
    """What `python -m kfp.dsl.executor_main` does, called on the module the zygote already imported."""
    executor_main = importlib.import_module(EXECUTOR_MODULE)
    program = Path(tempfile.mkdtemp()) / "ephemeral_component.py"
    program.write_text(source)
    sys.argv = [EXECUTOR_MODULE, "--component_module_path", str(program), *argv]
    try:
        executor_main.executor_main()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        return 1
    return 0


def main() -> None:
    """Entry point: import everything without starting threads, then serve on argv[1]."""
    os.environ.update(THREAD_FREE_IMPORTS)
    preload()
    _BLAS.extend(_blas_libraries())
    gc.freeze()  # a collection in a task then never writes to (and so copies) the zygote's objects
    serve(sys.argv[1])


def _blas_libraries() -> list[Any]:
    """The BLAS libraries loaded so far (threadpoolctl's scan, costly enough to do once)."""
    try:
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]
    except ImportError:
        return []
    return [library for library in ThreadpoolController().lib_controllers if library.user_api == "blas"]


if __name__ == "__main__":
    main()
