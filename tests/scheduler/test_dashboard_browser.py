"""The queue dashboard in a real browser (Debian's headless Chromium through Selenium and chromedriver)
against a real scheduler API, dispatcher and local backend on loopback, with real jobs.

One browser session walks the checks in order, since starting Chromium is the expensive part: a team's
token shows its jobs and not another team's; a pending job shows why it waits and when it should start;
a running job's log follows as it runs; cancel from the page works for the owner's jobs, and another
team's token cannot cancel them; the admin sees every team. Screenshots go to the test's tmp folder.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from chromium import BROWSER_MARKS, chromium, console_errors, screenshot
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from kubeforge.resources import Resources
from kubeforge.scheduler.api import SchedulerAPI
from kubeforge.scheduler.backends.local import LocalBackend
from kubeforge.scheduler.dispatcher import Dispatcher
from kubeforge.scheduler.http_server import serving_in_thread
from kubeforge.scheduler.model import Job, JobState, QueueSpec, Reason
from kubeforge.scheduler.store.sqlite import SqliteStore

TOKENS = {
    "alpha": "alpha-team-token-0123456789",
    "beta": "beta-team-token-0123456789",
    "admin": "admin-token-0123456789",
}
WAIT_S = 20.0

pytestmark = BROWSER_MARKS


@dataclass
class Stack:
    url: str
    store: SqliteStore


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A scheduler with one queue of one core on a local backend of one core, dispatching in a thread."""
    store = SqliteStore(tmp_path / "kf.db")
    store.add_token(TOKENS["admin"], "admin", admin=True)
    for team in ("alpha", "beta"):
        store.add_token(TOKENS[team], team)
    store.put_queue(QueueSpec("q", Resources(1000, 2048)))
    backend = LocalBackend(tmp_path / "launches", capacity=Resources(1000, 2048))
    dispatcher = Dispatcher(store, backend, grace_s=2)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        with serving_in_thread(SchedulerAPI(store, dispatcher, logs=backend.log_range)) as url:
            yield Stack(url, store)
    finally:
        stop.set()
        thread.join(timeout=30)
        store.close()


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    with chromium() as driver:
        yield driver


def _submit(stack: Stack, team: str, name: str, command: str, **fields: object) -> int:
    body = {"queue": "q", "name": name, "command": ["sh", "-c", command], "resources": {"cpu": "1"}, **fields}
    answer = requests.post(
        f"{stack.url}/v1/jobs", json=body, headers={"Authorization": f"Bearer {TOKENS[team]}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def _sign_in(driver: WebDriver, team: str) -> None:
    field = driver.find_element(By.ID, "token")
    field.send_keys(TOKENS[team])
    field.submit()


def _row_text(driver: WebDriver, job_id: int) -> str:
    """The text of job `job_id`'s row once it is on the page ("" until then)."""
    rows = driver.find_elements(By.ID, f"job-{job_id}")
    return str(rows[0].text) if rows else ""


def _until(check: Callable[[], object], what: str) -> None:
    """Poll `check` until it holds; fail naming `what` after WAIT_S (a generous bound, not a speed check)."""
    deadline = time.monotonic() + WAIT_S
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _job(stack: Stack, job_id: int) -> Job:
    found = stack.store.get(job_id)
    assert found is not None
    return found


def _shot(driver: WebDriver, folder: Path, name: str) -> None:
    screenshot(driver, folder, f"dashboard-{name}")


def test_dashboard_in_chromium(stack: Stack, browser: WebDriver, tmp_path: Path) -> None:
    driver = browser
    ticker = "i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.2; done"
    running = _submit(stack, "alpha", "ticker", ticker, max_runtime_s=600)
    _until(lambda: _job(stack, running).state is JobState.RUNNING, "the first job to run")
    waiting = _submit(stack, "alpha", "waiter", "echo never", max_runtime_s=60)
    other = _submit(stack, "beta", "beta-job", "echo beta; exit 3", max_runtime_s=60)
    failed = _submit(stack, "alpha", "doomed", "exit 7", max_runtime_s=60)

    driver.get(f"{stack.url}/ui/")
    assert driver.find_element(By.CSS_SELECTOR, "label[for=token]").text == "Team token"
    _sign_in(driver, "alpha")
    assert "alpha-team-token" not in driver.current_url

    # alpha sees its running and pending jobs, with reason and estimated start, and not beta's
    _until(lambda: "ticker" in _row_text(driver, running) and "waiter" in _row_text(driver, waiting), "alpha's jobs")
    estimate = requests.get(
        f"{stack.url}/v1/jobs/{waiting}", headers={"Authorization": f"Bearer {TOKENS['alpha']}"}, timeout=10
    ).json()
    reasons = {reason.value for reason in Reason} - {Reason.SUBMITTED.value}
    assert estimate["reason"] in reasons, estimate
    _until(lambda: estimate["reason"] in _row_text(driver, waiting), "the reason shown")
    pending_row = _row_text(driver, waiting)
    assert estimate["estimated_start"] and "not known" not in pending_row
    shown = driver.find_element(By.CSS_SELECTOR, f"#job-{waiting} time").get_attribute("datetime")
    expected = datetime.fromtimestamp(estimate["estimated_start"], UTC)
    assert shown and abs(datetime.fromisoformat(shown.replace("Z", "+00:00")) - expected).total_seconds() < 1
    assert "behind 2 earlier job(s)" in _row_text(driver, failed) or _job(stack, failed).reason
    assert _row_text(driver, other) == "" and "beta" not in driver.find_element(By.ID, "main").text
    queue_row = driver.find_element(By.CSS_SELECTOR, "#queues tbody tr").text
    assert queue_row.startswith("q ") and "1 / 1 cores (100%)" in queue_row, queue_row

    # usage comes from the scheduler's own accounting, as GET /v1/usage gives it to this token; its history is
    # a chart with a text alternative (the caption it is labelled by, and a table)
    usage = requests.get(f"{stack.url}/v1/usage", headers={"Authorization": f"Bearer {TOKENS['alpha']}"}, timeout=10)
    [line] = usage.json()["queues"]
    cores = int(line["used"]["cpu"].removesuffix("m")) / 1000
    cells = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#queues tbody tr td")]
    assert cells[2].startswith(f"{cores:g} / 1 cores ({round(line['share'] * 100)}%)"), cells
    memory = round(int(line["teams"]["alpha"]["memory"].removesuffix("Mi")) / 1024, 2)
    assert cells[5] == "no" and cells[7] == f"alpha: {cores:g} cores, {memory:g} GiB, 0 GPU", cells
    _until(lambda: driver.find_elements(By.CSS_SELECTOR, "#history-chart polyline"), "the history chart")
    chart = driver.find_element(By.ID, "history-chart")
    assert chart.is_displayed() and chart.size["width"] > 300 and chart.get_attribute("role") == "img"
    summary = driver.find_element(By.ID, str(chart.get_attribute("aria-labelledby")))
    assert summary.is_displayed() and "q now 100%, average" in summary.text, summary.text
    history_row = driver.find_element(By.ID, "history-q").text
    assert history_row.startswith("q 100% ") and "alpha: " in history_row and "beta" not in history_row

    # the log follows: later lines arrive without reloading the page
    driver.find_element(By.CSS_SELECTOR, f"#job-{running} button[aria-label^='Follow']").click()
    log = driver.find_element(By.ID, "log")
    _until(lambda: "tick-" in log.text, "the log's first lines")
    first_seen = max(int(line.split("-")[1]) for line in log.text.split() if line.startswith("tick-"))
    _until(lambda: f"tick-{first_seen + 5}" in log.text, "later log lines")
    lines = [line for line in log.text.split() if line.startswith("tick-")]
    assert len(lines) == len(set(lines)), "a log line was shown twice"
    _shot(driver, tmp_path, "alpha")
    # laptop width: nothing scrolls sideways; every button has a name; the policy blocked nothing of the page's
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    names = driver.execute_script("return [...document.querySelectorAll('button')].map((b) => b.textContent.trim())")
    assert all(names)
    console = " ".join(console_errors(driver))
    assert "Content Security Policy" not in console, console

    # another team's token cannot cancel alpha's job, even with the page's own code path
    status = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(`/v1/jobs/${arguments[0]}`, {method: 'DELETE', headers: {Authorization: 'Bearer ' + arguments[1]}})"
        ".then((r) => done(r.status));",
        waiting,
        TOKENS["beta"],
    )
    assert status == 404 and not _job(stack, waiting).cancel_requested

    # the owner cancels the running job from the page, with the keyboard
    cancel = driver.find_element(By.CSS_SELECTOR, f"#job-{running} button[aria-label='Cancel job {running}']")
    cancel.send_keys(Keys.ENTER)
    _until(lambda: _job(stack, running).state is JobState.CANCELLED, "the cancelled job to stop")
    assert f"Cancel requested for job {running}" in driver.find_element(By.ID, "status").text
    _until(lambda: _job(stack, failed).state is JobState.FAILED, "the failing job to fail")
    _until(lambda: "doomed" in driver.find_element(By.ID, "failed").text, "the failure listed")
    # the row re-renders on its own poll, after the failed list does
    _until(lambda: "7" in _row_text(driver, failed), "the failed job's exit code in its row")

    # beta signs in on the same tab: sees its job only
    driver.find_element(By.ID, "logout").click()
    assert driver.execute_script("return sessionStorage.length") == 0
    _sign_in(driver, "beta")
    _until(lambda: "beta-job" in driver.find_element(By.ID, "main").text, "beta's job")
    assert _row_text(driver, waiting) == "" and "ticker" not in driver.find_element(By.ID, "main").text
    assert not driver.find_element(By.ID, "log-section").is_displayed() and "tick-" not in driver.page_source
    _shot(driver, tmp_path, "beta")

    # the admin sees both teams
    driver.find_element(By.ID, "logout").click()
    _sign_in(driver, "admin")
    _until(lambda: "doomed" in driver.find_element(By.ID, "main").text, "every team's jobs")
    text = driver.find_element(By.ID, "main").text
    assert "beta-job" in text and "doomed" in text
    _shot(driver, tmp_path, "admin")

    # a refused token sends the user back to the sign-in form with a message
    driver.execute_script("sessionStorage.setItem('kubeforge-token', 'wrong')")
    driver.refresh()
    _until(lambda: "refused" in driver.find_element(By.ID, "status").text, "the refusal")
    assert driver.find_element(By.ID, "token").is_displayed()
