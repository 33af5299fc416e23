"""The `local` backend: processes (and torchrun for training specs) on this machine.

Launches go through a supervisor process per state folder (see `supervisor`): it claims
each launch key exclusively before it starts anything, so a launch repeated after a
scheduler crash starts nothing twice; it starts the workers directly, records their
process group and, at the end, the exit code, even when the scheduler that asked is gone.
It also tells the scheduler the moment a launch ends, so dispatch is event-driven.

The supervisor starts with, and gives each launch, only the allowlisted part of this
process's environment plus the job's own variables (`passthrough_environment`,
`job_environment`), so no secret of the scheduler reaches a job. Its state folder is 0700
and both ends of the socket check that the other runs under the same uid.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from kubeforge.errors import LocalBackendError
from kubeforge.launch.base import JobHandle
from kubeforge.resources import Resources
from kubeforge.scheduler.backends.base import (
    LOST_EXIT_CODE,
    PASSTHROUGH_ENV,
    PolledLaunch,
    job_command,
    job_environment,
    passthrough_environment,
)
from kubeforge.scheduler.backends.supervisor import LAUNCH_KEY, address, peer_uid
from kubeforge.scheduler.logs import EMPTY, LogSlice, read_file_range
from kubeforge.scheduler.model import Job

_START_TIMEOUT_S = 30.0
_RECORD_GRACE_S = 5.0
"""How long a launch whose processes are gone may lack its exit code before it counts as lost."""


def machine_capacity() -> Resources:
    """This machine's cores, memory and NVIDIA devices."""
    memory_mb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_mb = int(line.split()[1]) // 1024
    gpus = len(list(Path("/dev").glob("nvidia[0-9]*")))
    return Resources((os.cpu_count() or 1) * 1000, memory_mb, gpus)


class LocalBackend(PolledLaunch):
    """Runs each job's workers as local processes; state lives under `root`."""

    name: ClassVar[str] = "local"

    def __init__(
        self, root: str | Path, capacity: Resources | None = None, passthrough: tuple[str, ...] = PASSTHROUGH_ENV
    ) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.root.chmod(0o700)
        self.capacity = capacity or machine_capacity()
        self.passthrough = passthrough
        self._errors: dict[str, str] = {}
        self._wakeup: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self._link: _Link | None = None
        self._exited: dict[str, int] = {}
        self._watched: set[str] = set()
        self._gone_since: dict[str, float] = {}

    def set_wakeup(self, wakeup: Callable[[], None]) -> None:
        """Call `wakeup` whenever a launch ends (the dispatcher then polls at once)."""
        self._wakeup = wakeup

    def submit(self, job: Job) -> JobHandle:
        """Have the supervisor start the job unless this launch key already ran; the handle's id is the key."""
        key = job.launch_key
        handle = JobHandle(self.name, key, key)
        if (self.root / key / "claimed").exists():
            return handle
        workers = 1 if job.spec.training is not None else job.spec.workers  # torchrun starts the ranks itself
        environment = {**passthrough_environment(self.passthrough), **job_environment(job)}
        request = {"key": key, "workers": workers, "argv": job_command(job), "env": environment}
        line = json.dumps(request).encode() + b"\n"
        with self._lock:
            for attempt in (1, 2):  # a supervisor that went away is started again; the claim dedups
                link = self._connect()
                # not waiting for the answer: poll treats a requested key as running, the supervisor
                # tells its end, and an answer "already claimed" hands the key back to polling its folder
                self._watched.add(key)
                try:
                    link.socket.sendall(line)
                    return handle
                except OSError as exc:
                    self._disconnect()
                    if attempt == 2:
                        raise LocalBackendError(
                            f"the local supervisor under {self.root} is unreachable: {exc}"
                        ) from None
        raise AssertionError("unreachable")

    def poll(self, handles: Mapping[int, str]) -> dict[int, int]:
        """Exit codes of ended launches (told by the supervisor, else read from their folders)."""
        ended: dict[int, int] = {}
        if handles and (self._link is None or not self._link.open):
            with self._lock:  # sync first: a killed predecessor's last launches must be claimed before judging
                self._connect()
        unclaimed: dict[int, str] = {}
        for job_id, key in handles.items():
            code = self._exited.pop(key, None)
            if code is None and key not in self._watched:
                code = self._exit_code(key)
            if code == LOST_EXIT_CODE and not (self.root / key / "claimed").exists():
                unclaimed[job_id] = key  # perhaps still on its way from another dispatcher: sync, then judge
            elif code is not None:
                self._watched.discard(key)
                ended[job_id] = code
        if unclaimed:
            with self._lock:
                self._sync(self._connect())
            for job_id, key in unclaimed.items():
                code = self._exited.pop(key, None)
                ended_now = code if code is not None else self._exit_code(key)
                if ended_now is not None:
                    self._watched.discard(key)
                    ended[job_id] = ended_now
        return ended

    def suspend(self, handle: JobHandle) -> None:
        """SIGTERM to the launch's process group: the job may checkpoint and exit."""
        self._signal(handle.id, signal.SIGTERM)

    def cancel(self, handle: JobHandle) -> None:
        """SIGKILL to the launch's process group."""
        self._signal(handle.id, signal.SIGKILL)

    def log_range(self, handle: str, offset: int | None, limit: int) -> LogSlice:
        """A byte range of the workers' combined output (offset None: its tail)."""
        return read_file_range(self.root / handle / "log", offset, limit) if LAUNCH_KEY.fullmatch(handle) else EMPTY

    def reason(self, handle: str) -> str:
        """Why the launch could not start (told by the supervisor or kept in its folder), or ''."""
        told = self._errors.pop(handle, "")
        if told or not LAUNCH_KEY.fullmatch(handle):
            return told
        try:
            return (self.root / handle / "error").read_text(errors="replace")[:500]
        except OSError:
            return ""

    def close(self) -> None:
        """Drop the connection to the supervisor (it keeps running what it started)."""
        with self._lock:
            self._disconnect()

    def _connect(self) -> _Link:
        if self._link is not None and self._link.open:
            return self._link
        self._disconnect()
        deadline = time.monotonic() + _START_TIMEOUT_S
        started = False
        while True:
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                connection.connect(address(self.root))
                owner = peer_uid(connection)
                if owner != os.getuid():
                    connection.close()
                    raise LocalBackendError(
                        f"the supervisor socket of {self.root} is held by uid {owner}, not this user "
                        f"(uid {os.getuid()}); stop that process or use another state folder"
                    )
                break
            except (ConnectionRefusedError, FileNotFoundError):
                connection.close()
                if not started:
                    self._start_supervisor()
                    started = True
                if time.monotonic() > deadline:
                    raise LocalBackendError(f"the local supervisor under {self.root} did not start") from None
                time.sleep(0.02)
        self._link = link = _Link(connection)
        # the reader holds the backend weakly, and dropping the backend closes the link: a supervisor
        # stays up while a dispatcher is connected and exits idle only once none is
        weakref.finalize(self, link.close)
        reader = threading.Thread(target=_read, args=(weakref.ref(self), link), name="kubeforge-local", daemon=True)
        reader.start()
        self._sync(link)
        return link

    def _sync(self, link: _Link) -> None:
        """After the answer, a key that is not claimed was never sent by another dispatcher either."""
        try:
            link.socket.sendall(b'{"sync": true}\n')
            answer = link.acks.get(timeout=_START_TIMEOUT_S)
        except (OSError, queue.Empty):
            answer = None
        if answer is None:
            self._disconnect()
            raise LocalBackendError(f"the local supervisor under {self.root} did not answer")

    def _start_supervisor(self) -> None:
        command = [sys.executable, "-m", "kubeforge.scheduler.backends.supervisor", str(self.root)]
        with subprocess.Popen(  # the supervisor forks and detaches; this waits only for its first half
            command,
            env=passthrough_environment(self.passthrough),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd=self.root,
        ) as launcher:
            launcher.wait()

    def _disconnect(self) -> None:
        self._watched.clear()  # exits not told any more are read from the launch folders
        if self._link is not None:
            self._link.close()
            self._link = None

    def _told(self, message: dict[str, Any], link: _Link) -> None:
        key = message.get("exited") or message.get("ack")
        if key and message.get("error"):
            self._errors[key] = str(message["error"])
        if "exited" in message:
            self._exited[message["exited"]] = int(message["code"])
            self._wakeup()
        elif "ack" in message:
            if not message["started"]:
                self._watched.discard(message["ack"])
                self._wakeup()
        elif "synced" in message:
            link.acks.put(message)

    def _exit_code(self, key: str) -> int | None:
        folder = self.root / key
        code = _read_int(folder / "exit")
        if code is not None:
            return code
        group = _read_int(folder / "pid")
        if group is None and not (folder / "claimed").exists():
            return LOST_EXIT_CODE
        if group is not None and _group_alive(group):
            return None
        code = _read_int(folder / "exit")  # it may have ended between the two reads
        if code is not None:
            self._gone_since.pop(key, None)
            return code
        # being started, reaped but not yet recorded, or its supervisor could not record it (a full
        # disk) or died: lost only once that has lasted a while, never left running for ever
        gone_since = self._gone_since.setdefault(key, time.monotonic())
        if time.monotonic() - gone_since < _RECORD_GRACE_S:
            return None
        del self._gone_since[key]
        return LOST_EXIT_CODE

    def _signal(self, key: str, which: signal.Signals) -> None:
        group = _read_int(self.root / key / "pid")
        if group is None and not (self.root / key / "exit").exists():
            # its workers may already run while the supervisor has yet to record their group: once it
            # answers a sync, every launch it took is recorded
            with self._lock:
                self._sync(self._connect())
            group = _read_int(self.root / key / "pid")
        if group is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, which)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _read(backend: weakref.ref[LocalBackend], link: _Link) -> None:
    reader = link.socket.makefile("rb")
    try:
        for line in reader:
            alive = backend()
            if alive is None:
                break
            alive._told(json.loads(line), link)
            del alive
    except (OSError, ValueError):
        pass
    finally:
        link.open = False
        reader.close()
        link.socket.close()
        link.acks.put(None)  # a sync waiting for its answer learns that the supervisor is gone
        alive = backend()
        if alive is not None:
            alive._wakeup()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Link:
    """One connection to the supervisor: its socket, the launch answers, and whether it is still open."""

    def __init__(self, connection: socket.socket) -> None:
        self.socket = connection
        self.acks: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.open = True

    def close(self) -> None:
        """Shut the connection down; the reader thread then closes the socket."""
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)


__all__ = ["LocalBackend", "LocalBackendError", "machine_capacity"]
