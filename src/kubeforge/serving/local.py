"""The `local` deploy target: the model server as a detached process on this machine.

Running servers are recorded in ``servers.json`` under the state directory (``$KUBEFORGE_HOME``
or ``~/.kubeforge``), keyed by model name, with their logs under ``logs/``. Starting a name that
already serves the same model directory re-attaches to it instead of starting a second server.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import kubeforge
from kubeforge.errors import InputError, ServingError
from kubeforge.home import state_dir_path
from kubeforge.serving.protocol import check_model_name

REGISTRY = "servers.json"
STOP_TIMEOUT_S = 10.0
_LOG_TAIL_LINES = 30
_PORT_ATTEMPTS = 3
_SERVER_MODULE = "kubeforge.serving.server"
# Popen objects of servers started by this process: kept so they are reaped, never garbage-collected while running.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class LocalEndpoint:
    """A model server running as a local process."""

    name: str
    url: str
    pid: int
    port: int
    log_path: str
    model_dir: str
    host: str = "127.0.0.1"
    reattached: bool = field(default=False, compare=False)

    @property
    def infer_url(self) -> str:
        """The v2 infer endpoint of this model."""
        return f"{self.url}/v2/models/{self.name}/infer"

    def _to_json(self) -> dict[str, Any]:
        entry = asdict(self)
        del entry["reattached"]
        return entry

    @classmethod
    def _from_json(cls, entry: dict[str, Any]) -> LocalEndpoint:
        known = {f.name for f in fields(cls)} - {"reattached"}
        return cls(**{key: value for key, value in entry.items() if key in known})


def start_local_server(
    model_dir: str | Path,
    name: str,
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: str | Path | None = None,
    ready_timeout_s: float = 60.0,
) -> LocalEndpoint:
    """Start (or re-attach to) a detached model server for `model_dir`, wait until it is ready."""
    check_model_name(name)
    if not 0 <= port <= 65535:
        raise InputError(f"port: {port} is not a TCP port; use 1-65535, or 0 to pick a free one")
    if ready_timeout_s <= 0:
        raise InputError(f"ready_timeout_s: must be positive, got {ready_timeout_s}")
    root = state_dir_path(state_dir)
    model_path = str(Path(model_dir).resolve())
    with _name_lock(root, name):
        with _registry(root) as entries:
            existing = LocalEndpoint._from_json(entries[name]) if name in entries else None
        if existing is not None:
            same = existing.model_dir == model_path and existing.host == host and port in (0, existing.port)
            if same and _alive(existing.pid, name):
                existing.reattached = True
                return existing
            _stop(root, name)
        endpoint = _start(model_path, name, host, port, root, ready_timeout_s)
        with _registry(root) as entries:
            entries[name] = endpoint._to_json()
        return endpoint


def stop_local_server(name: str, state_dir: str | Path | None = None) -> bool:
    """Stop a registered server (SIGTERM, SIGKILL after 10 s); True if a running server was stopped."""
    root = state_dir_path(state_dir)
    with _name_lock(root, name):
        return _stop(root, name)


def list_local_servers(state_dir: str | Path | None = None) -> list[LocalEndpoint]:
    """The registered servers that are still running; entries of dead ones are dropped."""
    root = state_dir_path(state_dir)
    with _registry(root) as entries:
        for name in [n for n, entry in entries.items() if not _alive(int(entry["pid"]), n)]:
            del entries[name]
        return [LocalEndpoint._from_json(entry) for entry in entries.values()]


def _start(model_dir: str, name: str, host: str, port: int, root: Path, timeout_s: float) -> LocalEndpoint:
    log_path = root / "logs" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1 if port else _PORT_ATTEMPTS):
        chosen = port or _free_port(host)
        proc = _spawn(model_dir, name, host, chosen, log_path)
        endpoint = LocalEndpoint(name, _base_url(host, chosen), proc.pid, chosen, str(log_path), model_dir, host)
        failure = _wait_ready(proc, endpoint, timeout_s)
        if failure is None:
            return endpoint
        port_race = not port and "address already in use" in failure.lower() and attempt + 1 < _PORT_ATTEMPTS
        if not port_race:
            raise ServingError(f"{failure}\n--- last lines of {log_path} ---\n{_log_tail(log_path)}")
    raise AssertionError("unreachable")  # pragma: no cover


def _spawn(model_dir: str, name: str, host: str, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    package_root = str(Path(kubeforge.__file__).resolve().parent.parent)  # the kubeforge this process runs
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-m", _SERVER_MODULE, "--model", f"{name}={model_dir}", "--host", host]
    with log_path.open("wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [*command, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            env=env,
        )
    _CHILDREN[proc.pid] = proc
    return proc


def _wait_ready(proc: subprocess.Popen[bytes], endpoint: LocalEndpoint, timeout_s: float) -> str | None:
    deadline = time.monotonic() + timeout_s
    while True:
        code = proc.poll()
        if code is not None:
            _CHILDREN.pop(proc.pid, None)
            return f"model server '{endpoint.name}' exited with code {code} before it was ready"
        if _is_ready(endpoint.url):
            return None
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            _CHILDREN.pop(proc.pid, None)
            return f"model server '{endpoint.name}' was not ready after {timeout_s:g} s and was killed"
        time.sleep(0.1)


def _is_ready(url: str) -> bool:
    try:
        with _NO_PROXY.open(f"{url}/v2/health/ready", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return False


def _stop(root: Path, name: str) -> bool:
    with _registry(root) as entries:
        entry = entries.pop(name, None)
    if entry is None:
        return False
    pid = int(entry["pid"])
    if not _alive(pid, name):
        return False
    _signal(pid, signal.SIGTERM)
    if not _wait_gone(pid, name, STOP_TIMEOUT_S):
        _signal(pid, signal.SIGKILL)
        _wait_gone(pid, name, 5.0)
    return True


def _wait_gone(pid: int, name: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while _alive(pid, name):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _signal(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


def _alive(pid: int, name: str) -> bool:
    """Whether `pid` is still our model server for `name` (guards against reused pids)."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False  # someone else's process: the pid was reused
    if not Path("/proc/self").exists():
        return True  # no procfs to check the command line against: trust the pid
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    state, parent = stat[0], stat[1]
    if state in ("Z", "X"):
        return False
    if not cmdline:  # a process that is exiting has already released its command line; kernel threads have none
        return parent != "2"
    args = cmdline.split(b"\0")
    model_arg = f"{name}=".encode()
    return _SERVER_MODULE.encode() in args and any(arg.startswith(model_arg) for arg in args)


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _base_url(host: str, port: int) -> str:
    reachable = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{reachable}]:{port}" if ":" in reachable else f"http://{reachable}:{port}"


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(lines[-_LOG_TAIL_LINES:]) or "(log is empty)"


@contextmanager
def _name_lock(root: Path, name: str) -> Iterator[None]:
    lock_dir = root / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{name}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


@contextmanager
def _registry(root: Path) -> Iterator[dict[str, dict[str, Any]]]:
    """Read-modify-write the registry under an exclusive lock; written back only on success."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / REGISTRY
    with (root / f"{REGISTRY}.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        entries = _read_registry(path)
        before = json.dumps(entries, sort_keys=True)
        yield entries
        if json.dumps(entries, sort_keys=True) != before:
            tmp = path.with_name(f".{REGISTRY}.tmp")
            tmp.write_text(json.dumps(entries, indent=2, sort_keys=True))
            tmp.replace(path)


def _read_registry(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ServingError(f"{path} is not valid JSON ({exc.msg}); delete it and stop stray servers by pid") from exc
    if not isinstance(entries, dict):
        raise ServingError(f"{path} should map server names to entries; delete it and stop stray servers by pid")
    return entries


__all__ = [
    "REGISTRY",
    "LocalEndpoint",
    "list_local_servers",
    "start_local_server",
    "stop_local_server",
]
