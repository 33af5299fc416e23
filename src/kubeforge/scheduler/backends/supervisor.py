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

Run as `python -m kubeforge.scheduler.backends.supervisor ROOT` (the backend does this).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

IDLE_EXIT_S = 5.0


def address(root: Path) -> str:
    """The abstract socket name that belongs to the state folder `root`."""
    return "\0kubeforge-supervisor-" + hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:24]


def write_atomically(path: Path, text: str) -> None:
    """Write `text` so that readers see the old file or the whole new one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class _Supervisor:
    def __init__(self, root: Path, server: socket.socket) -> None:
        self.root = root
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.clients: dict[socket.socket, bytearray] = {}
        self.running: dict[int, str] = {}
        self.gangs: dict[str, list[int]] = {}  # key -> [workers left, exit code]
        self.devnull = os.open(os.devnull, os.O_RDONLY)

    def serve(self, wakeup: int) -> None:
        self.selector.register(self.server, selectors.EVENT_READ, "accept")
        self.selector.register(wakeup, selectors.EVENT_READ, "child")
        idle_since = time.monotonic()
        while True:
            for key, _ in self.selector.select(timeout=1.0):
                if key.data == "accept":
                    connection, _ = self.server.accept()
                    self.clients[connection] = bytearray()
                    self.selector.register(connection, selectors.EVENT_READ, "client")
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
            request = json.loads(line)
            if request.get("sync"):
                self._drain_others(connection)
                self._send(connection, {"synced": True})
            else:
                self._send(connection, {"ack": request["key"], "started": self._launch(request)})

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
        self.selector.unregister(connection)
        del self.clients[connection]
        connection.close()

    def _launch(self, request: dict[str, Any]) -> bool:
        key = str(request["key"])
        folder = self.root / key
        folder.mkdir(exist_ok=True)
        try:
            os.close(os.open(folder / "claimed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return False
        argv, workers = [str(arg) for arg in request["argv"]], int(request["workers"])
        log = os.open(folder / "log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        actions = [(os.POSIX_SPAWN_DUP2, self.devnull, 0), (os.POSIX_SPAWN_DUP2, log, 1), (os.POSIX_SPAWN_DUP2, log, 2)]
        environment = {**os.environ, **request["env"]}
        os.chdir(folder)  # the workers' working folder (posix_spawn inherits it)
        group = 0
        try:
            for rank in range(workers):
                env = {**environment, "RANK": str(rank), "WORLD_SIZE": str(workers)} if workers > 1 else environment
                options: dict[str, Any] = {"setsid": True} if rank == 0 else {"setpgroup": group}
                pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions, **options)
                group = group or pid
                self.running[pid] = key
        except OSError as exc:
            os.write(log, f"kubeforge: cannot start {argv[0]!r}: {exc}\n".encode())
            started = sum(1 for running_key in self.running.values() if running_key == key)
            if not started:
                os.close(log)
                write_atomically(folder / "exit", "127")
                return True
            workers = started
        finally:
            os.chdir(self.root)
        os.close(log)
        write_atomically(folder / "pid", str(group))
        self.gangs[key] = [workers, 0]
        return True

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
                write_atomically(self.root / key / "exit", str(gang[1]))
                for connection in list(self.clients):
                    self._send(connection, {"exited": key, "code": gang[1]})

    def _send(self, connection: socket.socket, message: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):  # a dispatcher gone meanwhile reads the exit file later
            connection.sendall(json.dumps(message).encode() + b"\n")


def main(argv: list[str] | None = None) -> int:
    """Serve the state folder given as the only argument until idle."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0]).resolve()
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

__all__ = ["IDLE_EXIT_S", "address", "main", "write_atomically"]
