"""`kubeforge queue ...` as real subprocesses against a real `kubeforge queue serve` (SQLite, local backend)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kubeforge.scheduler_client import SchedulerClient

ADMIN = "cli-admin-token-0123456789"
KUBEFORGE = str(Path(sys.executable).parent / "kubeforge")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("cli")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    (root / "store-url").write_text(f"sqlite:///{root / 'kf.db'}")
    command = [KUBEFORGE, "queue", "serve", "--store-file", str(root / "store-url"), "--port", str(port)]
    command += ["--state-dir", str(root / "state"), "--cpu", "1", "--memory", "2Gi", "--grace", "2"]
    process = subprocess.Popen(
        command, env={**os.environ, "KUBEFORGE_ADMIN_TOKEN": ADMIN}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            assert process.poll() is None and time.monotonic() < deadline, (
                process.stderr.read() if process.stderr else ""
            )
            time.sleep(0.1)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stderr:
            process.stderr.close()


def _queue(url: str, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBEFORGE_SCHEDULER_URL": url, "KUBEFORGE_TOKEN": token}
    return subprocess.run([KUBEFORGE, "queue", *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_submit_list_show_cancel_logs_and_queues(server: str) -> None:
    shown = _ok(_queue(server, ADMIN, "queues", "--set", "gpu", "--cpu", "1", "--memory", "2Gi"))
    assert shown.split()[:4] == ["gpu", "cpu=1000m", "memory=2048Mi", "gpu=0"]
    with SchedulerClient(server, ADMIN) as admin:
        token = admin.create_token("alice")
    blocker = int(_ok(_queue(server, token, "submit", "--queue", "gpu", "--name", "blocker", "--", "sleep", "60")))
    waiting = int(
        _ok(_queue(server, token, "submit", "--queue", "gpu", "--max-runtime", "30", "--", "echo", "hello from cli"))
    )
    team = SchedulerClient(server, token)
    _wait_for(team, blocker, "running")

    table = _ok(_queue(server, token, "list")).splitlines()
    assert table[0].split() == ["ID", "ARRAY", "STATE", "QUEUE", "TEAM", "PRIO", "TRY", "REASON"]
    rows = {int(line.split()[0]): line.split() for line in table[1:]}
    assert rows[blocker][1:5] == ["-", "running", "gpu", "alice"] and rows[waiting][2] == "pending"

    details = dict(line.split(None, 1) for line in _ok(_queue(server, token, "show", str(waiting))).splitlines())
    assert details["state"] == "pending" and details["position"] == "1"
    assert details["command"] == "echo hello from cli" and "estimated_start" in details

    assert _ok(_queue(server, token, "cancel", str(blocker))).strip() == f"cancel requested for job {blocker}"
    _wait_for(team, waiting, "succeeded")
    team.close()
    assert _ok(_queue(server, token, "logs", str(waiting))) == "hello from cli\n"
    finished = {
        int(line.split()[0]): line.split()[2] for line in _ok(_queue(server, token, "list", "--all")).split("\n")[1:-1]
    }
    assert finished == {blocker: "cancelled", waiting: "succeeded"}


def test_array_tasks_see_their_index_show_in_list_and_cancel_together(server: str) -> None:
    _ok(_queue(server, ADMIN, "queues", "--set", "arrays", "--cpu", "1", "--memory", "2Gi"))
    with SchedulerClient(server, ADMIN) as admin:
        token = admin.create_token("carol")
    echo = ["--", "sh", "-c", "echo task-$KUBEFORGE_ARRAY_TASK_ID of $KUBEFORGE_ARRAY_JOB_ID"]
    echoes = int(_ok(_queue(server, token, "submit", "--queue", "arrays", "--array", "0-4:2", *echo)))
    sleepers = int(_ok(_queue(server, token, "submit", "--queue", "arrays", "--array", "7,9", "--", "sleep", "60")))
    team = SchedulerClient(server, token)
    tasks = team.array(echoes)
    assert [(task["array_id"], task["array_index"]) for task in tasks] == [(echoes, 0), (echoes, 2), (echoes, 4)]
    for task in tasks:
        _wait_for(team, task["id"], "succeeded")
        assert _ok(_queue(server, token, "logs", str(task["id"]))) == f"task-{task['array_index']} of {echoes}\n"
    rows = {int(line.split()[0]): line.split() for line in _ok(_queue(server, token, "list")).splitlines()[1:]}
    assert [rows[task["id"]][1] for task in team.array(sleepers)] == [f"{sleepers}[7]", f"{sleepers}[9]"]
    details = dict(line.split(None, 1) for line in _ok(_queue(server, token, "show", str(sleepers))).splitlines())
    assert details["array_id"] == str(sleepers) and details["array_index"] == "7"
    cancelled = _ok(_queue(server, token, "cancel", "--array", str(sleepers))).strip()
    assert cancelled == f"cancel requested for 2 task(s) of array {sleepers}"
    for task in team.array(sleepers):
        _wait_for(team, task["id"], "cancelled")
    team.close()


def test_tokens_create_list_revoke_and_whole_logs(server: str) -> None:
    token = _ok(_queue(server, ADMIN, "tokens", "create", "--team", "dave", "--expires-in", "3600")).strip()
    table = _ok(_queue(server, ADMIN, "tokens", "list", "--team", "dave")).splitlines()
    assert table[0].split() == ["ID", "TEAM", "ROLE", "CREATED", "EXPIRES"] and len(table) == 2
    token_id, team, role = table[1].split()[:3]
    assert (team, role) == ("dave", "team") and token not in "\n".join(table)
    script = "import sys; sys.stdout.write('x' * 200000 + 'end')"
    with SchedulerClient(server, ADMIN) as admin, SchedulerClient(server, token) as dave:
        admin.put_queue("logs", {"cpu": 1, "memory": "1Gi"})
        job = dave.submit({"queue": "logs", "command": [sys.executable, "-c", script]})
        _wait_for(dave, job, "succeeded")
    assert _ok(_queue(server, token, "logs", str(job))) == "x" * (65536 - 3) + "end"  # the tail
    assert _ok(_queue(server, token, "logs", "--all", str(job))) == "x" * 200000 + "end"
    assert _ok(_queue(server, ADMIN, "tokens", "revoke", token_id)).strip() == f"revoked {token_id}"
    assert "401" in _queue(server, token, "list").stderr


def test_errors_are_one_line_with_an_exit_code(server: str) -> None:
    calls = {
        "missing": (server, ADMIN, "show", "987654"),
        "stranger": (server, "not-a-real-token-at-all", "list"),
        "unreachable": ("http://127.0.0.1:9", ADMIN, "list"),
    }
    with ThreadPoolExecutor(len(calls)) as pool:
        results = dict(zip(calls, pool.map(lambda args: _queue(*args), calls.values()), strict=True))
    assert {name: result.returncode for name, result in results.items()} == dict.fromkeys(calls, 6)
    assert results["missing"].stderr.splitlines() == [
        "error: GET /v1/jobs/987654: 404: job 987654: no such job for team 'admin'"
    ]
    assert "401: unknown bearer token" in results["stranger"].stderr
    assert "scheduler at 127.0.0.1:9 unreachable" in results["unreachable"].stderr


def _wait_for(client: SchedulerClient, job_id: int, state: str) -> None:
    deadline = time.monotonic() + 60
    while client.job(job_id)["state"] != state:
        assert time.monotonic() < deadline, client.job(job_id)
        time.sleep(0.1)
