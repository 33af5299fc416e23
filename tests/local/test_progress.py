"""Progress of a local run: JSON events for tools, plain lines off a terminal, one status line on it."""

import io
import json
from pathlib import Path

from click.testing import CliRunner

from kubeforge.cli import cli
from kubeforge.local.progress import Progress

TWO_TASKS = """
from kfp import dsl


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def add(a: int, b: int) -> int:
    return a + b


@dsl.pipeline(name="two-tasks")
def two_tasks(start: int = 1) -> None:
    first = add(a=start, b=1)
    add(a=first.output, b=2)
"""


def test_json_events_alone_on_stdout_first_run_then_cached_run(tmp_path: Path) -> None:
    source = tmp_path / "two_tasks.py"
    source.write_text(TWO_TASKS)
    command = ["run", str(source), "--local", "--pipeline-root", str(tmp_path / "root"), "--json"]

    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 0, first.stderr
    events = [json.loads(line) for line in first.stdout.splitlines()]  # nothing but JSON on stdout
    kinds = [event["event"] for event in events]
    assert kinds[0] == "run-started" and kinds[-1] == "run-finished"
    assert kinds.count("task-started") == 2 and kinds.count("task-finished") == 2
    assert {event["task"] for event in events if event["event"] == "task-finished"} == {"add", "add-2"}
    assert events[-1]["done"] == 2 and events[-1]["cached"] == 0 and events[-1]["running"] == 0
    assert "Executing task" in first.stderr  # kfp.local's task log went to stderr

    again = CliRunner().invoke(cli, command)
    last = json.loads(again.stdout.splitlines()[-1])
    assert last["event"] == "run-finished" and last["cached"] == 2 and last["done"] == 2

    plain = CliRunner().invoke(cli, [*command[:-1], "--no-cache"])
    assert plain.exit_code == 0, plain.stderr
    assert "(0 task(s) reused)" in plain.stdout


def test_plain_lines_off_a_terminal_and_one_rewritten_line_on_it() -> None:
    off_terminal = io.StringIO()
    progress = Progress.for_stream(off_terminal, json_events=False)
    progress.event("task-started", "train")
    progress.event("task-cached", "train")
    lines = off_terminal.getvalue().splitlines()
    assert len(lines) == 2 and "running 1" in lines[0] and "done 1 (cached 1), running 0" in lines[1]

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    progress = Progress.for_stream(terminal, json_events=False)
    progress.event("task-started", "train")
    progress.event("task-finished", "train")
    progress.event("run-finished")
    assert terminal.getvalue().count("\r\x1b[K") == 3 and terminal.getvalue().count("\n") == 1
