"""The local backend's supervisor: one small process per state folder that starts and reaps jobs.

The dispatcher sends it launch requests (JSON lines on a Linux abstract unix socket); it
claims each launch key by creating `<root>/<key>/claimed` exclusively, starts the workers
directly (no shell) in one new process group, records the group's pid, acknowledges, and
when the last worker exits writes the exit code (first non-zero, `-N` for signal N) and
tells every connected dispatcher. It runs in its own session and outlives a killed
dispatcher, so exit codes are never lost and a repeated launch starts nothing twice. It
exits once it has had neither jobs nor connected dispatchers for `IDLE_EXIT_S`. A dispatcher that connects
first asks to `sync`: the answer comes after every request a killed predecessor had already
sent is launched, so a launch key that is not claimed then will never be.

Only processes of the supervisor's own uid are served (`SO_PEERCRED`, checked at accept;
the backend checks the supervisor's uid the same way). Launch keys must match
`LAUNCH_KEY`, each request is handled in its own error boundary (a bad line, a launch that
cannot start or a full disk fails that request or that job, never the supervisor), and
everything it writes is private to its uid (umask 077: folders 0700, files 0600). A
launch's environment is exactly what the request carries, never the supervisor's own.

Run as `python -m kubeforge.scheduler.backends.supervisor ROOT` (the backend does this).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import selectors
import signal
import socket
import struct
import sys
import time
from pathlib import Path
from typing import Any

IDLE_EXIT_S = 5.0
LAUNCH_KEY = re.compile(r"kf-[0-9]{1,19}-[0-9]{1,9}")
"""What a launch key looks like (`Job.launch_key`, matched whole); nothing else names a folder under the root."""
START_FAILED_EXIT_CODE = 126
"""Recorded for a launch whose workers could not be started (its reason is in the folder's `error` file)."""
MAX_REQUEST_BYTES = 64 << 20
"""A connection whose unfinished line grows past this is dropped."""


def address(root: Path) -> str:
    """The abstract socket name that belongs to the state folder `root`."""
    return "\0kubeforge-supervisor-" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]


def peer_uid(connection: socket.socket) -> int:
    """The uid of the process at the other end of a unix socket (`SO_PEERCRED`)."""
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", credentials)[1])


def write_atomically(path: Path, text: str) -> None:
    """Write `text` (mode 0600) so that readers see the old file or the whole new one."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(text)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    os.replace(temporary, path)


class _Supervisor:
    def __init__(self, root: Path, server: socket.socket) -> None:
        self.root = root
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.clients: dict[socket.socket, bytearray] = {}
        self.running: dict[int, str] = {}
        self.groups: dict[str, int] = {}  # key -> process group of a running gang
        self.gangs: dict[str, list[int]] = {}  # key -> [workers left, exit code]
        self.devnull = os.open(os.devnull, os.O_RDONLY)

    def serve(self, wakeup: int) -> None:
        self.selector.register(self.server, selectors.EVENT_READ, "accept")
        self.selector.register(wakeup, selectors.EVENT_READ, "child")
        idle_since = time.monotonic()
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    self._accept()
                elif key.data == "child":
                    with contextlib.suppress(BlockingIOError):
                        os.read(wakeup, 4096)
                else:
                    self._receive(key.fileobj)  # type: ignore[arg-type]
            self._reap()
            if self.running or self.clients:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > IDLE_EXIT_S:
                return

    def _accept(self) -> None:
        try:
            connection, _ = self.server.accept()
        except OSError:
            return
        if peer_uid(connection) != os.getuid():  # another user: not served, not even answered
            connection.close()
            return
        self.clients[connection] = bytearray()
        self.selector.register(connection, selectors.EVENT_READ, "client")

    def _receive(self, connection: socket.socket) -> None:
        try:
            data = connection.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._drop(connection)
            return
        self.clients[connection] += data
        self._process(connection)

    def _process(self, connection: socket.socket) -> None:
        buffer = self.clients[connection]
        while b"\n" in buffer:
            line, _, rest = bytes(buffer).partition(b"\n")
            buffer[:] = rest
            try:
                self._handle(connection, line)
            except Exception as exc:  # one bad request must not stop the others
                self._send(connection, {"error": f"request refused: {type(exc).__name__}: {exc}"[:500]})
        if len(buffer) > MAX_REQUEST_BYTES:
            self._drop(connection)

    def _handle(self, connection: socket.socket, line: bytes) -> None:
        request = json.loads(line)
        if not isinstance(request, dict):
            raise ValueError("expected a JSON object")
        if request.get("sync"):
            self._drain_others(connection)
            self._send(connection, {"synced": True})
            return
        key = request.get("key")
        if not isinstance(key, str) or not LAUNCH_KEY.fullmatch(key):
            raise ValueError(f"key {key!r} is not a launch key (kf-JOB-ATTEMPT)")
        argv, env, workers = request.get("argv"), request.get("env"), request.get("workers")
        if not (isinstance(argv, list) and argv and all(isinstance(arg, str) for arg in argv)):
            raise ValueError("argv: expected a non-empty list of strings")
        if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise ValueError("env: expected an object of strings")
        if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= 4096:
            raise ValueError("workers: expected a whole number from 1 to 4096")
        try:
            started = self._launch(key, argv, env, workers)
        except OSError as exc:  # it could not even be claimed (a full disk): the dispatcher counts it lost
            self._send(connection, {"ack": key, "started": False, "error": f"cannot claim {key}: {exc}"})
            return
        self._send(connection, {"ack": key, "started": started})

    def _drain_others(self, asking: socket.socket) -> None:
        """Launch everything other connections already sent (a killed dispatcher's last requests)."""
        for connection in [client for client in self.clients if client is not asking]:
            connection.setblocking(False)
            try:
                while True:
                    data = connection.recv(1 << 16)
                    if not data:
                        break
                    self.clients[connection] += data
            except (BlockingIOError, OSError):
                data = b"more may come"
            finally:
                connection.setblocking(True)
            self._process(connection)
            if not data:
                self._drop(connection)

    def _drop(self, connection: socket.socket) -> None:
        if self.clients.pop(connection, None) is not None:
            self.selector.unregister(connection)
            connection.close()

    def _launch(self, key: str, argv: list[str], env: dict[str, str], workers: int) -> bool:
        """Claim `key` and start its workers; False when the key was claimed before (nothing started)."""
        folder = self.root / key
        folder.mkdir(exist_ok=True)
        try:
            os.close(os.open(folder / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return False
        try:
            started = self._spawn(folder, key, argv, env, workers)
        except (OSError, ValueError) as exc:  # a full disk, a missing program, a NUL in the environment
            self._record_exit(key, START_FAILED_EXIT_CODE, f"cannot start {argv[0]!r}: {exc}")
            return True
        with contextlib.suppress(OSError):  # without it, its end is still told, or judged from its group
            write_atomically(folder / "pid", str(self.groups[key]))
        self.gangs[key] = [started, 0]
        return True

    def _spawn(self, folder: Path, key: str, argv: list[str], env: dict[str, str], workers: int) -> int:
        """Start the gang in one new process group with the request's environment only; the number started."""
        log = os.open(folder / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
        rank = 0
        try:
            os.chdir(folder)  # the workers' working folder (posix_spawn inherits it)
            for rank in range(workers):
                ranked = {**env, "RANK": str(rank), "WORLD_SIZE": str(workers)} if workers > 1 else env
                options: dict[str, Any] = {"setsid": True} if rank == 0 else {"setpgroup": self.groups[key]}
                pid = os.posix_spawnp(argv[0], argv, ranked, file_actions=actions, **options)
                self.groups.setdefault(key, pid)
                self.running[pid] = key
        except (OSError, ValueError) as exc:
            with contextlib.suppress(OSError):
                os.write(log, f"kubeforge: cannot start {argv[0]!r} (rank {rank} of {workers}): {exc}\n".encode())
            if key not in self.groups:
                raise
            return rank
        finally:
            os.chdir(self.root)
            os.close(log)
        return workers

    def _record_exit(self, key: str, code: int, error: str = "") -> None:
        """Write the exit code (and why, if known) and tell every dispatcher, even when the disk is full."""
        self.groups.pop(key, None)
        folder = self.root / key
        with contextlib.suppress(OSError):  # disk full: the told code still reaches connected dispatchers
            if error:
                write_atomically(folder / "error", error)
            write_atomically(folder / "exit", str(code))
        message: dict[str, Any] = {"exited": key, "code": code}
        if error:
            message["error"] = error
        for connection in list(self.clients):
            self._send(connection, message)

    def _reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            key = self.running.pop(pid, None)
            if key is None:
                continue
            gang = self.gangs[key]
            code = os.waitstatus_to_exitcode(status)
            gang[0] -= 1
            if code and not gang[1]:
                gang[1] = code
            if gang[0] == 0:
                del self.gangs[key]
                self._record_exit(key, gang[1])

    def _send(self, connection: socket.socket, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # a dispatcher gone meanwhile reads the exit file later
            connection.sendall(json.dumps(message).encode() + b"\n")


def main(argv: list[str] | None = None) -> int:
    """Serve the state folder given as the only argument until idle."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve()
    os.umask(0o077)
    if os.fork() > 0:  # detach: the launching dispatcher reaps this parent at once
        os._exit(0)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(address(root))
    except OSError:
        return 0  # another supervisor serves this folder
    server.listen(64)
    os.chdir(root)
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    _Supervisor(root, server).serve(read_end)
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = [
    "IDLE_EXIT_S",
    "LAUNCH_KEY",
    "MAX_REQUEST_BYTES",
    "START_FAILED_EXIT_CODE",
    "address",
    "main",
    "peer_uid",
    "write_atomically",
]
