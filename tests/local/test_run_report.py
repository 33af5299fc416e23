"""The run report builder on recorded runs: hostile artifact content stays inert, big artifacts are linked
instead of inlined, missing ones are named, a failed run shows its failed task and error, and
`kubeforge report RUN` rebuilds the page from the run's record."""

import base64
import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner
from kfp import dsl

from kubeforge.cli.main import cli
from kubeforge.errors import InputError, KubeforgeError
from kubeforge.local.journal import RunRecord, new_record
from kubeforge.local.report import SAVED_FILE, rebuild_report, report_path
from kubeforge.local.report.artifacts import Limits
from kubeforge.local.report.graph import TaskNode, graph_of, levels
from kubeforge.local_runner import run_pipeline_locally

HOSTILE_MARKDOWN = (
    "# Stats <script>alert('md')</script>\n\n<img src=x onerror=alert(2)>\n\n"
    "[click](javascript:alert(3)) and `code`\n\n| a | b |\n|---|---|\n| <b>1</b> | 2 |\n"
)
HOSTILE_HTML = "<!DOCTYPE html><html><body><h1>Validation</h1><script>parent.alert('html')</script></body></html>"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


class _Elements(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer would see them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _elements(page: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(page)
    return parser.tags


NODES = [
    TaskNode(
        "prepare", "prepare", outputs={"notes": "system.Markdown", "report": "system.HTML", "plots": "system.Artifact"}
    ),
    TaskNode(
        "evaluate",
        "evaluate",
        ("prepare",),
        outputs={"metrics": "system.Metrics", "cm": "system.ClassificationMetrics"},
    ),
    TaskNode("deploy", "deploy", ("evaluate",), group="gate-passed"),
]


def _recorded_run(root: Path, *, fail_evaluate: bool = False) -> RunRecord:
    """A run of NODES as the local runner records it, with the given artifacts on disk."""
    record = new_record(root, "demo-run", "demo", {"data_uri": "/data/<x>.csv"})
    run_dir = root / "demo-run"
    prepare = run_dir / "prepare"
    plots = prepare / "plots"
    plots.mkdir(parents=True)
    (prepare / "notes").write_text(HOSTILE_MARKDOWN)
    (prepare / "report").write_text(HOSTILE_HTML)
    (plots / "curve.png").write_bytes(PNG)
    (plots / '"><img src=x onerror=alert(4)>.png').write_bytes(PNG)
    (plots / "history.jsonl").write_text('{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "loss": 0.25}\n')
    secret = root.parent / "secret.md"
    secret.write_text("# the-secret-heading")
    (plots / "peek.md").symlink_to(secret)
    outputs = {
        name: {"artifacts": [{"name": name, "uri": str(prepare / name), "metadata": {}}]}
        for name in ("notes", "report", "plots", "gone")
    }
    (prepare / "executor_output.json").write_text(json.dumps({"artifacts": outputs}))
    record.task_started("prepare")
    record.task_finished("prepare", "ran", str(prepare))
    record.task_started("evaluate")
    evaluate = run_dir / "evaluate"
    evaluate.mkdir()
    if fail_evaluate:
        record.task_failed("evaluate")
        record.finish("failed")
    else:
        metadata = {
            "confusionMatrix": {
                "annotationSpecs": [{"displayName": "<cat>"}, {"displayName": "dog"}],
                "rows": [{"row": [5, 1]}, {"row": [2, 7]}],
            },
            "confidenceMetrics": [
                {"confidenceThreshold": 1.0, "recall": 0.0, "falsePositiveRate": 0.0},
                {"confidenceThreshold": 0.5, "recall": 1.0, "falsePositiveRate": 0.0},
                {"confidenceThreshold": 0.0, "recall": 1.0, "falsePositiveRate": 1.0},
            ],
        }
        artifacts = {
            "metrics": {
                "artifacts": [{"name": "metrics", "uri": str(evaluate / "metrics"), "metadata": {"<b>acc</b>": 0.9}}]
            },
            "cm": {"artifacts": [{"name": "cm", "uri": str(evaluate / "cm"), "metadata": metadata}]},
        }
        (evaluate / "executor_output.json").write_text(json.dumps({"artifacts": artifacts}))
        record.task_finished("evaluate", "cached", str(evaluate))
        record.finish("succeeded")
    return record


def _publish(record: RunRecord, error: str = "", limits: Limits | None = None) -> str:
    (record.folder / SAVED_FILE).write_text(json.dumps({"tasks": [node.to_json() for node in NODES], "error": error}))
    return rebuild_report(record.folder.parents[2], record.name, limits).read_text()


def test_hostile_artifact_content_cannot_run_or_fetch_anything(tmp_path: Path) -> None:
    page = _publish(_recorded_run(tmp_path))
    elements = _elements(page)
    assert [tag for tag, _ in elements if tag in ("script", "object", "embed", "base", "form")] == []
    for tag, attributes in elements:
        assert not [name for name in attributes if name.startswith("on")], (tag, attributes)
        for name in ("href", "src"):
            value = attributes.get(name) or ""
            assert not value.lower().startswith(("javascript:", "http:", "https:", "//")), (tag, value)
            assert not value.startswith("data:") or value.startswith("data:image/png;base64,"), value
    [policy] = [
        attrs for tag, attrs in elements if tag == "meta" and attrs.get("http-equiv") == "Content-Security-Policy"
    ]
    assert "default-src 'none'" in str(policy["content"]) and "script-src" not in str(policy["content"])
    # the HTML artifact is shown whole, but in a sandbox that runs no script
    [frame] = [attrs for tag, attrs in elements if tag == "iframe"]
    assert frame["sandbox"] == "" and frame["srcdoc"] == HOSTILE_HTML
    # Markdown is rendered (heading, table, code) with its raw HTML shown as text, and no javascript: link
    assert "<h1>Stats &lt;script&gt;alert('md')&lt;/script&gt;</h1>" in page
    assert "<td>&lt;b&gt;1&lt;/b&gt;</td>" in page and "<code>code</code>" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "&lt;th scope" not in page and "&lt;b&gt;acc&lt;/b&gt;" in page  # metric names escaped, once
    assert page.count('src="data:image/png;base64,') == 2
    assert "&quot;&gt;&lt;img src=x onerror=alert(4)&gt;.png" in page  # a hostile file name, as text
    assert "the-secret-heading" not in page and 'plots/peek.md</a> <span class="size">(a link; not shown here)' in page


def test_report_shows_every_task_state_metrics_and_links_relative_to_the_run(tmp_path: Path) -> None:
    record = _recorded_run(tmp_path)
    page = _publish(record)
    assert report_path(record) == tmp_path / "demo-run" / "report.html"
    tasks = page.split('<table class="tasks"')[1].split("</table>")[0]
    assert '<a href="#task-prepare">prepare</a></th><td>ran</td>' in tasks
    assert '<a href="#task-evaluate">evaluate</a></th><td>cached</td><td>' in tasks and "<td>yes</td>" in tasks
    assert '<a href="#task-deploy">deploy</a></th><td>skipped</td><td>-</td><td>no</td><td>evaluate</td>' in tasks
    assert '<th scope="row">&lt;cat&gt;</th><td>5</td><td>1</td>' in page  # the confusion matrix as a table
    assert "ROC curve through 3 points, area under the curve 1.000" in page  # the chart's text alternative
    assert "<td>0.25</td>" in page  # the JSON Lines history as a table beside its chart
    hrefs = [attrs["href"] for tag, attrs in _elements(page) if tag == "a" and attrs.get("href")]
    files = [href for href in hrefs if href and not href.startswith("#")]
    assert "prepare/notes" in files and "prepare/plots" in files and "prepare/plots/curve.png" in files
    missing = [href for href in files if not (tmp_path / "demo-run" / unquote(str(href))).exists()]
    assert missing == [], missing
    assert "missing: the task recorded this artifact but its file is not there" in page


def test_artifacts_over_the_caps_are_linked_not_inlined(tmp_path: Path) -> None:
    page = _publish(_recorded_run(tmp_path), limits=Limits(image_bytes=10, text_bytes=10, files_per_artifact=1))
    assert "data:image/png" not in page and "<iframe" not in page and "<h1>Stats" not in page
    assert page.count("too large to show here") == 3  # the notes, the report, the one plot shown
    assert "and 3 more file(s)" in page


def test_failed_run_shows_the_failed_task_its_error_and_what_never_ran(tmp_path: Path) -> None:
    record = _recorded_run(tmp_path, fail_evaluate=True)
    page = _publish(record, error="Task 'evaluate' failed\ncolumn <target> is missing")
    assert '<span class="badge state-failed">failed</span></h1>' in page
    section = page.split('id="task-evaluate"')[1].split("</section>")[0]
    assert "failed</span>" in section and "column &lt;target&gt; is missing" in section
    assert '<a href="#task-deploy">deploy</a></th><td>not run</td>' in page
    assert "<script" not in page


def test_report_command_rebuilds_the_page_and_names_unknown_runs(tmp_path: Path) -> None:
    record = _recorded_run(tmp_path)
    _publish(record)
    report_path(record).unlink()
    result = CliRunner().invoke(cli, ["report", "demo-run", "--pipeline-root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert report_path(record).exists() and "prepare" in report_path(record).read_text()
    by_folder = CliRunner().invoke(cli, ["report", str(tmp_path / "demo-run")])
    assert by_folder.exit_code == 0, by_folder.output
    with pytest.raises(InputError, match=r"report no-such-run: no such run under .*; runs there: demo-run"):
        rebuild_report(tmp_path, "no-such-run")


def test_graph_of_tabular_classifier_flattens_the_gate_and_levels_the_tasks() -> None:
    from google.protobuf.json_format import MessageToDict

    from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier

    nodes = {node.name: node for node in graph_of(MessageToDict(tabular_classifier.pipeline_spec))}
    assert nodes["importer"].importer and nodes["importer"].display == "import-data"
    assert nodes["deploy-model"].group == "gate-passed"
    assert set(nodes["deploy-model"].depends) == {"evaluate-classifier", "train-pytorch"}
    assert nodes["evaluate-classifier"].outputs["classification_metrics"] == "system.ClassificationMetrics"
    assert levels(list(nodes.values())) == {
        "importer": 0,
        "validate-data": 1,
        "preprocess-tabular": 2,
        "train-pytorch": 3,
        "evaluate-classifier": 4,
        "deploy-model": 5,
    }


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def write_notes(notes: dsl.Output[dsl.Markdown]) -> None:
    """Write a Markdown artifact that tries to inject a script."""
    with open(notes.path, "w") as handle:
        handle.write("# Notes\n\n<script>alert(1)</script>\n")


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def explode(notes: dsl.Input[dsl.Markdown]) -> None:
    """Fail with a message that carries markup."""
    raise ValueError(f"cannot read <{notes.name}>")


@dsl.pipeline(name="exploding")
def exploding() -> None:
    explode(notes=write_notes().outputs["notes"])


def test_a_failed_local_run_writes_its_report_naming_the_failed_task(tmp_path: Path) -> None:
    with pytest.raises(KubeforgeError, match="explode"):
        run_pipeline_locally(exploding, {}, tmp_path / "root")
    [report] = (tmp_path / "root").glob("exploding-*/report.html")
    page = report.read_text()
    assert "<title>exploding run report: failed</title>" in page
    assert '<a href="#task-write-notes">write-notes</a></th><td>ran</td>' in page
    assert '<a href="#task-explode">explode</a></th><td>failed</td>' in page
    assert "Why the run failed" in page and "explode" in page.split("Why the run failed")[1]
    assert "<h1>Notes</h1>" in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page
