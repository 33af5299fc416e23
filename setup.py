"""Package discovery for the three source roots mapped under the `kubeforge` namespace.

pyproject.toml maps `kubeforge` -> src/kubeforge, `kubeforge.components` -> components and
`kubeforge.pipelines` -> pipelines; setuptools cannot discover packages across such a
mapping declaratively, so the package list is computed here.
"""

from setuptools import find_packages, setup

_ROOTS = {
    "kubeforge": "src/kubeforge",
    "kubeforge.components": "components",
    "kubeforge.pipelines": "pipelines",
}


def _packages() -> list[str]:
    found: list[str] = []
    for prefix, root in _ROOTS.items():
        found.append(prefix)
        found.extend(f"{prefix}.{name}" for name in find_packages(root))
    return sorted(set(found))


setup(packages=_packages(), package_dir=_ROOTS)
