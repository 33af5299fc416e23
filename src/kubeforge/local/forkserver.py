"""The client side of the fork server: start the warm zygote, run a task in a fresh fork of it.

The zygote gets KUBEFORGE_WARM_WORKER_START_TIMEOUT seconds to import everything and listen.
When it does not come up in time (or exits while starting) it is killed, and the run's tasks
start the way kfp.local starts them, a new interpreter each: the warm worker only saves start-up
time, so a run that can finish without it should not fail for want of it. The failed start is
remembered, so the other tasks of the run do not each wait out the timeout again.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubeforge.errors import ForkServerError, InputError
from kubeforge.local.zygote import HEADER
from kubeforge.settings import WARM_WORKER_START_TIMEOUT

log = logging.getLogger(__name__)
_DRAIN_SECONDS = 0.2


@dataclass(frozen=True)
class TaskExit:
    """How a forked task ended: its exit code, or the signal that killed it."""

    exit_code: int | None = None
    signal: int | None = None

    @property
    def ok(self) -> bool:
        """True when the task exited with status 0."""
        return self.exit_code == 0

    def describe(self) -> str:
        """A short human phrase for logs: 'exit code 1' or 'killed by signal 9'."""
        return f"killed by signal {self.signal}" if self.signal is not None else f"exit code {self.exit_code}"


class ForkServer:
    """One warm zygote process; `run` forks a task from it and streams the task's output."""

    def __init__(self, python: str = sys.executable) -> None:
        self._python = python
        self._folder = Path(tempfile.mkdtemp(prefix="kubeforge-forkserver-"))  # mode 0700
        self.socket_path = str(self._folder / "zygote.sock")
        self._process: subprocess.Popen[bytes] | None = None
        self.threads_at_start = 0

    def start(self, timeout_s: float | None = None) -> ForkServer:
        """Start the zygote and wait until it has imported everything and listens; raise
        ForkServerError (the zygote killed) when it takes over `timeout_s` (default: the setting)."""
        limit = start_timeout_s() if timeout_s is None else timeout_s
        self._process = subprocess.Popen(
            [self._python, "-m", "kubeforge.local.zygote", self.socket_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._process.stdout is not None
        line = _first_line(self._process.stdout.fileno(), limit)
        if line is None or not line.endswith(b"\n"):
            self._process.kill()
            code = self._process.wait()
            self.close()
            if line is None:
                raise ForkServerError(
                    f"the warm worker did not start within {limit:g} s; on a busy or slow machine raise "
                    f"{WARM_WORKER_START_TIMEOUT.name} (seconds)"
                )
            raise ForkServerError(f"the warm worker exited with status {code} while starting")
        self.threads_at_start = int(json.loads(line)["threads"])
        if self.threads_at_start != 1:
            log.warning("the warm worker has %d threads after its imports; forks may deadlock", self.threads_at_start)
        return self

    @property
    def pid(self) -> int:
        """The zygote's process id."""
        if self._process is None:
            raise ForkServerError("the fork server is not started")
        return self._process.pid

    def alive(self) -> bool:
        """True while the zygote runs."""
        return self._process is not None and self._process.poll() is None

    def run(
        self, source: str, argv: list[str], env: dict[str, str], cwd: str, on_output: Callable[[str], None]
    ) -> TaskExit:
        """Run `python -m kfp.dsl.executor_main --component_module_path <source> ARGV` in a fresh fork."""
        body = json.dumps({"source": source, "argv": argv, "env": env, "cwd": cwd}).encode()
        read_end, write_end = os.pipe()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                try:
                    conn.connect(self.socket_path)
                    socket.send_fds(conn, [HEADER.pack(len(body))], [write_end])
                    conn.sendall(body)
                except OSError as exc:
                    raise ForkServerError(f"the warm worker did not take the task: {exc}") from exc
                os.close(write_end)
                write_end = -1
                return _follow(conn, read_end, on_output)
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)

    def close(self) -> None:
        """Stop the zygote (tasks already forked finish on their own) and remove its socket folder."""
        if self._process is not None and self._process.poll() is None:
            assert self._process.stdin is not None
            self._process.stdin.close()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                if stream is not None:
                    stream.close()
        shutil.rmtree(self._folder, ignore_errors=True)


def start_timeout_s() -> float:
    """KUBEFORGE_WARM_WORKER_START_TIMEOUT in seconds; a value that is not a positive number is an InputError."""
    text = WARM_WORKER_START_TIMEOUT.read()
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise InputError(
            f"{WARM_WORKER_START_TIMEOUT.name}={text!r}: give the seconds the warm worker may take to start, "
            f"a number above 0 (default {WARM_WORKER_START_TIMEOUT.default})"
        )
    return seconds


def _first_line(descriptor: int, seconds: float) -> bytes | None:
    """Bytes up to and including the first newline read from `descriptor`; what came before EOF
    (no newline); None when `seconds` pass first."""
    deadline = time.monotonic() + seconds
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([descriptor], [], [], left)[0]:
            return None
        chunk = os.read(descriptor, 4096)
        if not chunk:
            return data
        data += chunk
    return data


def _follow(conn: socket.socket, output: int, on_output: Callable[[str], None]) -> TaskExit:
    replies = b""
    pending = b""
    streams: list[socket.socket | int] = [conn, output]
    result: dict[str, Any] = {}
    while "exit_code" not in result and "signal" not in result:
        readable, _, _ = select.select(streams, [], [])
        if output in readable:
            chunk = os.read(output, 65536)
            if chunk:
                pending = _emit_lines(pending + chunk, on_output)
            else:
                streams.remove(output)
        if conn in readable:
            data = conn.recv(4096)
            if not data:
                raise ForkServerError("the warm worker died before reporting the task's status")
            replies += data
            *lines, replies = replies.split(b"\n")
            for line in lines:
                result.update(json.loads(line))
    pending = _drain(output, pending, on_output) if output in streams else pending
    if pending:
        on_output(pending.decode(errors="replace"))
    return TaskExit(exit_code=result.get("exit_code"), signal=result.get("signal"))


def _drain(output: int, pending: bytes, on_output: Callable[[str], None]) -> bytes:
    """Read what the task left in its pipe; stop at EOF or when a detached child keeps it open."""
    while select.select([output], [], [], _DRAIN_SECONDS)[0]:
        chunk = os.read(output, 65536)
        if not chunk:
            break
        pending = _emit_lines(pending + chunk, on_output)
    return pending


def _emit_lines(data: bytes, on_output: Callable[[str], None]) -> bytes:
    *lines, rest = data.split(b"\n")
    for line in lines:
        on_output(line.decode(errors="replace") + "\n")
    return rest


_shared: ForkServer | None = None
_failed_start: ForkServerError | None = None
_shared_lock = threading.Lock()


def shared_fork_server() -> ForkServer:
    """This process's fork server, started on first use and restarted if it died.

    When it cannot start, raises ForkServerError, and raises the same error at once (no new
    attempt) until `retry_failed_start` or `stop_shared_fork_server` is called.
    """
    global _shared, _failed_start
    with _shared_lock:
        if _failed_start is not None:
            raise _failed_start
        if _shared is None or not _shared.alive():
            if _shared is not None:
                _shared.close()
                _shared = None
            try:
                _shared = ForkServer().start()
            except ForkServerError as exc:
                _failed_start = exc
                log.warning("%s; until the next run each task starts a new interpreter, as kfp.local does", exc)
                raise
        return _shared


def retry_failed_start() -> None:
    """Let the next `shared_fork_server` call try to start the worker again after a failed start."""
    global _failed_start
    with _shared_lock:
        _failed_start = None


def stop_shared_fork_server() -> None:
    """Stop this process's fork server, if one runs (the next task starts a new one)."""
    global _shared, _failed_start
    with _shared_lock:
        _failed_start = None
        if _shared is not None:
            _shared.close()
            _shared = None


atexit.register(stop_shared_fork_server)


__all__ = [
    "ForkServer",
    "TaskExit",
    "retry_failed_start",
    "shared_fork_server",
    "start_timeout_s",
    "stop_shared_fork_server",
]
