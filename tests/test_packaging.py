"""The built wheel is a complete, self-contained `kubeforge` distribution.

The source lives in three roots (src/kubeforge, components, pipelines) mapped under one `kubeforge`
package; the editable install used for development hides mistakes in that mapping, because it
resolves imports from the checkout. This test builds the wheel from a copy of the project
sources, installs it into a fresh virtual environment, and proves from a directory outside the
checkout that:

* the wheel holds every module of the three roots under `kubeforge/` (plus `py.typed`) and no
  top-level `components` or `pipelines` package;
* the build-time tools (scripts/kubeforge_dev: catalogue generation, staleness and reuse checks,
  Terraform checks) are not in it, although their sources sit beside the package's;
* every `kubeforge` module imported comes from the installed wheel, not from the checkout;
* a component imports and the `tabular_classifier` pipeline compiles to KFP YAML with its four
  component tasks, both through kfp's compiler and through the installed `kubeforge` console script.

Third-party packages come from the development virtualenv through a `.pth` file holding a plain
path: such a line only adds the directory to `sys.path` and does not run the `.pth` files inside
it, so the editable-install finder for the checkout is never activated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import yaml

import kubeforge

PROJECT = Path(__file__).resolve().parents[1]
ROOTS = {"src/kubeforge": "kubeforge", "components": "kubeforge/components", "pipelines": "kubeforge/pipelines"}
SOURCES = ["src", "components", "pipelines", "scripts", "setup.py", "pyproject.toml", "README.md"]
BUILD_TIME_TOOLS = "scripts/kubeforge_dev"
COMPONENT_TASKS = {"validate-data", "preprocess-tabular", "train-pytorch", "evaluate-classifier", "deploy-model"}

IMPORT_AND_COMPILE = """
import json, sys
import kubeforge
from kubeforge.components.training.pytorch import train_op
from kfp import compiler
from kubeforge.pipelines.tabular_classifier.pipeline import tabular_classifier

compiler.Compiler().compile(tabular_classifier, sys.argv[1])
print(json.dumps({
    "kubeforge": kubeforge.__file__,
    "train_op": train_op.name,
    "modules": {
        name: getattr(module, "__file__", None)
        for name, module in sys.modules.items()
        if name == "kubeforge" or name.startswith("kubeforge.")
    },
    "editable_finder": any("editable" in name and "kubeforge" in name for name in sys.modules),
}))
"""


def _run(command: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


def _copy_sources(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    target.mkdir()
    for name in SOURCES:
        source = PROJECT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        else:
            shutil.copy2(source, target / name)


def _build_wheel(sources: Path, dist: Path) -> Path:
    # --skip-dependency-check: setuptools>=70.1 builds wheels itself, the `wheel` package that
    # pyproject.toml still lists is not needed (and not installed in the development venv).
    _run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--skip-dependency-check", "--outdir", dist],
        cwd=sources,
    )
    wheels = list(dist.glob("kubeforge-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _expected_modules(sources: Path) -> set[str]:
    expected = set()
    for root, prefix in ROOTS.items():
        for path in (sources / root).rglob("*.py"):
            expected.add(f"{prefix}/{path.relative_to(sources / root).as_posix()}")
    return expected


def _clean_env(venv: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _tasks(dag_owner: dict[str, object], components: dict[str, dict[str, object]]) -> set[str]:
    """Every task name in a DAG, descending into sub-DAGs such as the deploy condition."""
    names: set[str] = set()
    for name, task in dag_owner["dag"]["tasks"].items():  # type: ignore[index]
        names.add(name)
        component = components[task["componentRef"]["name"]]
        if "dag" in component:
            names |= _tasks(component, components)
    return names


def _check_pipeline_yaml(path: Path) -> dict[str, object]:
    spec = yaml.safe_load(path.read_text())
    assert spec["pipelineInfo"]["name"] == "tabular-classifier"
    executors = spec["deploymentSpec"]["executors"]
    containers = {name.removeprefix("exec-"): e["container"] for name, e in executors.items() if "container" in e}
    assert set(containers) == COMPONENT_TASKS
    assert {container["image"] for container in containers.values()} == {kubeforge.IMAGE}
    tasks = _tasks(spec["root"], spec["components"])
    assert tasks >= COMPONENT_TASKS, tasks
    return spec


def test_wheel_installs_and_compiles_the_pipeline_outside_the_checkout(tmp_path: Path) -> None:
    assert not tmp_path.resolve().is_relative_to(PROJECT)
    sources = tmp_path / "sources"
    _copy_sources(sources)
    wheel = _build_wheel(sources, tmp_path / "dist")

    # The wheel: everything under kubeforge/, nothing at the top level besides the dist-info.
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "kubeforge/__init__.py",
        "kubeforge/py.typed",
        "kubeforge/components/training/pytorch/core.py",
        "kubeforge/pipelines/tabular_classifier/pipeline.py",
    ):
        assert required in names, required
    assert _expected_modules(sources) <= names, sorted(_expected_modules(sources) - names)
    tools = {path.name for path in (sources / BUILD_TIME_TOOLS).glob("*.py")} - {"__init__.py"}
    assert {"catalog_build.py", "reuse_checks.py", "hcl_checks.py"} <= tools, tools
    shipped_tools = sorted(name for name in names if name.rsplit("/", 1)[-1] in tools or "kubeforge_dev" in name)
    assert not shipped_tools, shipped_tools
    top_level = {name.split("/", 1)[0] for name in names}
    assert top_level == {"kubeforge", wheel.name.removesuffix("-py3-none-any.whl") + ".dist-info"}, top_level
    dist_info = next(name for name in top_level if name.endswith(".dist-info"))
    assert zipfile.ZipFile(wheel).read(f"{dist_info}/top_level.txt").decode().split() == ["kubeforge"]
    assert "kubeforge = kubeforge.cli:main" in zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()

    # A fresh venv with only the wheel; third-party packages through a plain-path .pth line.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet",
         "--disable-pip-version-check", wheel],
        cwd=tmp_path,
    )  # fmt: skip
    fresh_site = Path(
        _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=tmp_path).strip()
    )
    main_site = Path(sysconfig.get_paths()["purelib"])
    assert fresh_site.resolve() != main_site.resolve()
    (fresh_site / "development_venv.pth").write_text(f"{main_site}\n")

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = _clean_env(venv)
    report = json.loads(_run([python, "-c", IMPORT_AND_COMPILE, "pipeline.yaml"], cwd=workdir, env=env))
    assert Path(report["kubeforge"]).resolve().is_relative_to(fresh_site.resolve()), report["kubeforge"]
    assert not report["editable_finder"]
    outside = {
        name: file
        for name, file in report["modules"].items()
        if file and not Path(file).resolve().is_relative_to(fresh_site.resolve())
    }
    assert not outside, outside
    assert {"kubeforge.components.training.pytorch", "kubeforge.pipelines.tabular_classifier.pipeline"} <= set(
        report["modules"]
    )
    assert report["train_op"] == "train-pytorch"
    compiled = _check_pipeline_yaml(workdir / "pipeline.yaml")

    # The console script finds the built-in pipeline inside the installed package.
    kubeforge_script = venv / "bin" / "kubeforge"
    assert kubeforge.__version__ in _run([kubeforge_script, "--version"], cwd=workdir, env=env)
    _run([kubeforge_script, "compile", "tabular_classifier", "--output", "cli.yaml"], cwd=workdir, env=env)
    assert _check_pipeline_yaml(workdir / "cli.yaml") == compiled
    assert sorted(path.name for path in workdir.iterdir()) == ["cli.yaml", "pipeline.yaml"]
