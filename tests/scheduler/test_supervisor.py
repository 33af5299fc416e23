"""The local backend's supervisor under attack: other uids, path tricks, junk lines, private files, a full disk.

Every test runs the real supervisor process (started by the real LocalBackend) and talks to
its socket the way an attacker on the same machine would.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from scheduler_builders import launch_output

from kubeforge.resources import Resources
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.backends.supervisor import address
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.model import JobSpec, JobState, QueueSpec
from kubeforge.scheduler.store.sqlite import SqliteStore

CAPACITY = Resources(2000, 4096)
NOBODY = 65534


@contextmanager
def _dispatching(tmp_path: Path) -> Iterator[tuple[SqliteStore, LocalBackend, Dispatcher]]:
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", CAPACITY))
    backend = LocalBackend(tmp_path / "launches", capacity=CAPACITY)
    dispatcher = Dispatcher(store, backend, grace_s=2)
    dispatcher.start()
    try:  # one job first: the supervisor is up from then on
        assert _finish(dispatcher, store, store.submit(JobSpec("t", "q", ("true",)), time.time())) is JobState.SUCCEEDED
        yield store, backend, dispatcher
    finally:
        backend.close()
        store.close()


@pytest.fixture
def dispatching(tmp_path: Path) -> Iterator[tuple[SqliteStore, LocalBackend, Dispatcher]]:
    """A store with queue `q`, a local backend (its supervisor started) and a started dispatcher."""
    with _dispatching(tmp_path) as parts:
        yield parts


def _talk(root: Path, *lines: bytes, answers: int) -> list[dict[str, object]]:
    """Send raw lines to the supervisor of `root` as this uid; the first `answers` answers."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(10)
        connection.connect(address(root))
        connection.sendall(b"".join(lines))
        reader = connection.makefile("rb")
        return [json.loads(reader.readline()) for _ in range(answers)]


def _finish(dispatcher: Dispatcher, store: SqliteStore, job_id: int, timeout_s: float = 30) -> JobState:
    deadline = time.monotonic() + timeout_s
    while (job := store.get(job_id)) is not None and not job.state.terminal:
        assert time.monotonic() < deadline, job
        dispatcher.step()
        time.sleep(0.02)
    assert job is not None
    return job.state


def test_another_uid_cannot_use_the_supervisor_socket(
    dispatching: tuple[SqliteStore, LocalBackend, Dispatcher], tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching to a second uid with setpriv needs root")
    _, backend, _ = dispatching
    target = tmp_path / "written-by-nobody"
    request = {"key": "kf-999-0", "workers": 1, "argv": ["touch", str(target)], "env": {"PATH": "/usr/bin:/bin"}}
    attacker = (
        "import socket, sys\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.settimeout(10)\n"
        "s.connect('\\0' + sys.argv[1])\n"
        "try:\n"
        "    s.sendall(sys.argv[2].encode() + b'\\n'); answer = s.recv(4096)\n"
        "except OSError:\n"
        "    answer = b''\n"
        "print('answered' if answer else 'hung up')\n"
    )
    as_nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "/usr/bin/python3"]
    result = subprocess.run(
        [*as_nobody, "-c", attacker, address(backend.root).lstrip("\0"), json.dumps(request)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    # the supervisor hangs up on another uid without a word: nothing launched, nothing claimed
    assert (result.returncode, result.stdout.strip()) == (0, "hung up"), result.stderr
    time.sleep(0.3)
    assert not target.exists()
    assert not (backend.root / "kf-999-0").exists()
    assert stat.S_IMODE(backend.root.stat().st_mode) == 0o700


def test_keys_outside_the_launch_key_pattern_are_refused(
    dispatching: tuple[SqliteStore, LocalBackend, Dispatcher], tmp_path: Path
) -> None:
    _, backend, _ = dispatching
    escaped = tmp_path / "escaped"
    answers = _talk(
        backend.root,
        *(
            json.dumps({"key": key, "workers": 1, "argv": ["touch", str(escaped)], "env": {}}).encode() + b"\n"
            for key in ("../../x", "kf-1-0/../../y", "/tmp/z", "kf-1-0\n")
        ),
        b'{"sync": true}\n',
        answers=5,
    )
    assert [sorted(answer) for answer in answers[:4]] == [["error"]] * 4, answers
    assert all("is not a launch key" in str(answer["error"]) for answer in answers[:4])
    assert answers[4] == {"synced": True}  # and it still serves
    time.sleep(0.2)
    assert not escaped.exists()
    assert not (tmp_path / "x").exists() and not (backend.root.parent.parent / "x").exists()
    assert [path.name for path in backend.root.iterdir()] == ["kf-1-0"]  # the fixture's job only


def test_a_junk_line_leaves_a_running_job_alive(dispatching: tuple[SqliteStore, LocalBackend, Dispatcher]) -> None:
    store, backend, dispatcher = dispatching
    job_id = store.submit(JobSpec("t", "q", ("sh", "-c", "echo started; sleep 1; echo finished")), time.time())
    deadline = time.monotonic() + 10
    while "started" not in launch_output(backend, f"kf-{job_id}-0"):
        assert time.monotonic() < deadline
        dispatcher.step()
        time.sleep(0.02)
    answers = _talk(backend.root, b"this is not json\n", b"[1, 2]\n", b'{"key": 5}\n', b'{"sync": true}\n', answers=4)
    assert [sorted(answer) for answer in answers[:3]] == [["error"]] * 3, answers
    assert answers[3] == {"synced": True}
    assert _finish(dispatcher, store, job_id) is JobState.SUCCEEDED
    assert launch_output(backend, f"kf-{job_id}-0") == "started\nfinished\n"


def test_state_is_private_to_the_supervisor_uid(dispatching: tuple[SqliteStore, LocalBackend, Dispatcher]) -> None:
    store, backend, dispatcher = dispatching
    job_id = store.submit(JobSpec("t", "q", ("sh", "-c", "echo private")), time.time())
    assert _finish(dispatcher, store, job_id) is JobState.SUCCEEDED
    folder = backend.root / f"kf-{job_id}-0"
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in [backend.root, folder, *folder.iterdir()]}
    assert stat.S_IMODE((backend.root / "kf-1-0").stat().st_mode) == 0o700
    assert modes == {
        backend.root.name: 0o700,
        folder.name: 0o700,
        "claimed": 0o600,
        "log": 0o600,
        "pid": 0o600,
        "exit": 0o600,
    }


def test_jobs_get_only_their_own_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets in the scheduler's environment reach neither the supervisor nor a job."""
    monkeypatch.setenv("KUBEFORGE_ADMIN_TOKEN", "admin-secret-0123456789")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    with _dispatching(tmp_path) as (store, backend, dispatcher):
        spec = JobSpec("t", "q", ("sh", "-c", "env; tr '\\0' '\\n' < /proc/$PPID/environ"), env={"MINE": "a,ALL"})
        job_id = store.submit(spec, time.time())
        assert _finish(dispatcher, store, job_id) is JobState.SUCCEEDED
        seen = launch_output(backend, f"kf-{job_id}-0")
    assert "MINE=a,ALL" in seen and f"KUBEFORGE_JOB_ID={job_id}" in seen and "PATH=" in seen
    assert "admin-secret" not in seen and "aws-secret" not in seen


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs with room for very few files (a disk that fills up), unmounted (lazily) afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=64,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_fails_that_job_with_the_reason_and_never_the_supervisor(tiny_disk: Path, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "kf.db")
    store.put_queue(QueueSpec("q", CAPACITY))
    backend = LocalBackend(tiny_disk / "launches", capacity=CAPACITY)
    dispatcher = Dispatcher(store, backend, grace_s=2)
    dispatcher.start()
    running = store.submit(JobSpec("t", "q", ("sh", "-c", "echo up; sleep 1.5; echo still-up")), time.time())
    deadline = time.monotonic() + 10
    while "up" not in launch_output(backend, f"kf-{running}-0"):
        assert time.monotonic() < deadline
        dispatcher.step()
        time.sleep(0.02)
    filler = 0
    with pytest.raises(OSError):  # use up every inode left
        while True:
            (tiny_disk / f"filler-{filler}").touch()
            filler += 1
    doomed = store.submit(JobSpec("t", "q", ("sh", "-c", "echo never")), time.time())
    assert _finish(dispatcher, store, doomed) is JobState.FAILED
    failed = store.get(doomed)
    assert failed is not None
    assert "No space left on device" in failed.reason, failed.reason
    for index in range(filler):
        (tiny_disk / f"filler-{index}").unlink()
    after = store.submit(JobSpec("t", "q", ("sh", "-c", "echo after")), time.time())
    assert _finish(dispatcher, store, after) is JobState.SUCCEEDED
    assert _finish(dispatcher, store, running) is JobState.SUCCEEDED
    assert launch_output(backend, f"kf-{running}-0") == "up\nstill-up\n"
    backend.close()
    store.close()
