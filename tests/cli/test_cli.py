"""The `kubeforge` console script, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from kubeforge.catalog import list_components
from kubeforge_dev.catalog_build import repository_root, stale_generated


def _kubeforge(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "kubeforge"), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300, check=False)


def test_components_list_shows_the_catalogue() -> None:
    result = _kubeforge("components", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    listed = [line.split()[0] for line in lines]
    assert listed == [entry.key for entry in list_components()]
    assert set(listed) >= {"evaluation/classification", "preprocess/tabular", "serving/deploy", "training/pytorch"}
    assert all(line.split()[1] in {"experimental", "alpha", "beta", "stable"} for line in lines)


def test_compile_writes_pipeline_yaml(tmp_path: Path) -> None:
    result = _kubeforge("compile", "tabular_classifier", "-o", str(tmp_path / "tc.yaml"))
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load((tmp_path / "tc.yaml").read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert {"preprocess-tabular", "train-pytorch", "evaluate-classifier", "condition-1"} <= set(tasks)


def test_compile_a_user_pipeline_file(tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text(
        "from kfp import dsl\n"
        "from kubeforge.components.preprocess.tabular import preprocess_op\n"
        "@dsl.pipeline(name='mine')\n"
        "def mine(uri: str):\n"
        "    data = dsl.importer(artifact_uri=uri, artifact_class=dsl.Dataset)\n"
        "    preprocess_op(data=data.output, label_column='y')\n"
    )
    result = _kubeforge("compile", f"{source}:mine", "-o", str(tmp_path / "mine.yaml"))
    assert result.returncode == 0, result.stderr
    assert "preprocess-tabular" in (tmp_path / "mine.yaml").read_text()


def test_run_local_reports_bad_input_without_a_traceback(tmp_path: Path, breast_cancer_csv: Path) -> None:
    data = tmp_path / "nan_labels.csv"
    frame = pd.read_csv(breast_cancer_csv)
    frame.loc[[3, 7], "target"] = None
    frame.to_csv(data, index=False)

    result = _kubeforge("run", "tabular_classifier", "--local", "--param", f"data_uri={data}", cwd=tmp_path)

    assert result.returncode == 2
    last = result.stderr.strip().splitlines()
    assert last[0].startswith("error: ")
    assert "label column 'target' has 2 missing value(s)" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_errors_name_what_to_fix(tmp_path: Path) -> None:
    cases = {
        ("run", "tabular_classifier", "--local", "--param", "nope=1"): "--param nope: the pipeline declares no such",
        ("run", "tabular_classifier", "--local", "--param", "epochs=ten"): "--param epochs: 'ten' is not a valid",
        ("run", "tabular_classifier"): "pass --local",
        ("compile", "no_such_pipeline"): "built-in pipelines: batch_prediction, champion_challenger,",
        ("compile", str(tmp_path / "absent.py")): "does not exist",
    }
    for args, message in cases.items():
        result = _kubeforge(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_generated_catalogue_files_are_current() -> None:
    assert stale_generated(repository_root()) == []
