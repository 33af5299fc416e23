"""The task graph of a run's pipeline, flattened from its compiled spec, and drawn as an inline SVG.

Tasks inside a condition or loop become ordinary nodes that depend on what the group depended on
(and name the group); an edge onto a group becomes edges onto the group's last tasks. The layout
puts each task one column right of its latest dependency (its topological level).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from html import escape
from typing import Any


@dataclass(frozen=True)
class TaskNode:
    """One task of the pipeline as the report shows it."""

    name: str
    """The task's key in the compiled pipeline: how the run record names it."""
    display: str
    depends: tuple[str, ...] = ()
    group: str = ""
    """The condition or loop it runs inside ("" at the top level)."""
    importer: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    """Output artifact name -> its schema title (system.Metrics, system.HTML, ...)."""

    def to_json(self) -> dict[str, Any]:
        """The node as JSON-ready values."""
        return {**asdict(self), "depends": list(self.depends)}

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> TaskNode:
        """A node read back from `to_json`'s output."""
        return cls(
            name=str(body["name"]),
            display=str(body.get("display", body["name"])),
            depends=tuple(str(name) for name in body.get("depends", ())),
            group=str(body.get("group", "")),
            importer=bool(body.get("importer", False)),
            outputs={str(key): str(value) for key, value in dict(body.get("outputs", {})).items()},
        )


def graph_of(spec: Mapping[str, Any]) -> list[TaskNode]:
    """The tasks of a compiled pipeline spec (as a dict, the YAML's shape), dependencies first."""
    nodes: list[TaskNode] = []
    _add_dag(spec, spec.get("root", {}).get("dag", {}), "", (), nodes)
    return nodes


def _add_dag(
    spec: Mapping[str, Any], dag: Mapping[str, Any], group: str, entry: tuple[str, ...], nodes: list[TaskNode]
) -> tuple[str, ...]:
    """Add `dag`'s tasks to `nodes`; tasks with no dependency inside it depend on `entry`. Returns its exits."""
    tasks: Mapping[str, Any] = dag.get("tasks", {})
    exits: dict[str, tuple[str, ...]] = {}
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    for name in _in_dependency_order(tasks):
        task = tasks[name]
        resolved = (leaf for dependency in task.get("dependentTasks", []) for leaf in exits.get(dependency, ()))
        depends = tuple(dict.fromkeys(resolved)) or entry
        component = spec.get("components", {}).get(task.get("componentRef", {}).get("name", ""), {})
        display = str(task.get("taskInfo", {}).get("name", name))
        if "dag" in component:
            exits[name] = _add_dag(spec, component["dag"], display, depends, nodes) or depends
            continue
        artifacts = component.get("outputDefinitions", {}).get("artifacts", {})
        outputs = {key: str(value.get("artifactType", {}).get("schemaTitle", "")) for key, value in artifacts.items()}
        importer = "importer" in executors.get(component.get("executorLabel", ""), {})
        nodes.append(TaskNode(name, display, depends, group, importer, outputs))
        exits[name] = (name,)
    needed = {dependency for task in tasks.values() for dependency in task.get("dependentTasks", [])}
    return tuple(leaf for name in tasks if name not in needed for leaf in exits.get(name, ()))


def _in_dependency_order(tasks: Mapping[str, Any]) -> list[str]:
    ordered: list[str] = []
    waiting = {name: set(task.get("dependentTasks", [])) & set(tasks) for name, task in tasks.items()}
    while waiting:
        ready = sorted(name for name, needs in waiting.items() if not needs - set(ordered)) or sorted(waiting)[:1]
        for name in ready:
            ordered.append(name)
            del waiting[name]
    return ordered


def levels(nodes: list[TaskNode]) -> dict[str, int]:
    """Each task's column: one right of its latest dependency (nodes come dependencies first)."""
    level: dict[str, int] = {}
    for node in nodes:
        level[node.name] = 1 + max((level.get(dependency, 0) for dependency in node.depends), default=-1)
    return level


NODE_W, NODE_H, GAP_X, GAP_Y, PAD, TOP = 168, 50, 36, 18, 8, 30


def graph_svg(nodes: list[TaskNode], labels: Mapping[str, tuple[str, str]]) -> str:
    """The DAG as inline SVG: one linked box per task naming it, its state and duration.

    `labels` maps a task to (state, "state · duration" text). State is written, not only coloured.
    """
    level = levels(nodes)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for node in nodes:
        column = level[node.name]
        place[node.name] = (PAD + column * (NODE_W + GAP_X), TOP + rows.get(column, 0) * (NODE_H + GAP_Y))
        rows[column] = rows.get(column, 0) + 1
    width = PAD * 2 + (max(level.values(), default=0) + 1) * (NODE_W + GAP_X) - GAP_X
    height = TOP + PAD + max(rows.values(), default=1) * (NODE_H + GAP_Y) - GAP_Y
    edges = [
        _edge(place[dependency], place[node.name], level[node.name] - level[dependency] > 1)
        for node in nodes
        for dependency in node.depends
        if dependency in place
    ]
    boxes = []
    for node in nodes:
        x, y = place[node.name]
        state, caption = labels.get(node.name, ("pending", "pending"))
        title = node.display if not node.group else f"{node.display} (in {node.group})"
        boxes.append(
            f'<a href="#{task_anchor(node.name)}" aria-label="{escape(title)}: {escape(caption)}">'
            f'<rect class="node state-{escape(state)}" x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 10}" y="{y + 21}" class="node-name">{escape(_clip(title, 21))}</text>'
            f'<text x="{x + 10}" y="{y + 40}" class="node-state">{escape(_clip(caption, 24))}</text></a>'
        )
    return (
        f'<svg class="graph" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'role="group" aria-labelledby="graph-title">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto"><path d="M0,0 L10,5 L0,10 z" class="arrowhead"/></marker></defs>'
        + "".join(edges)
        + "".join(boxes)
        + "</svg>"
    )


def _edge(source: tuple[int, int], target: tuple[int, int], skips_columns: bool) -> str:
    """An arrow between two boxes; one that skips columns arcs above the boxes it would cross."""
    (x1, y1), (x2, y2) = source, target
    if skips_columns:
        top1, top2 = x1 + NODE_W // 2, x2 + NODE_W // 2
        path = f"M{top1},{y1} C{top1},{y1 - TOP} {top2},{y2 - TOP} {top2},{y2 - 4}"
    else:
        (sx, sy), (ex, ey) = (x1 + NODE_W, y1 + NODE_H // 2), (x2 - 6, y2 + NODE_H // 2)
        path = f"M{sx},{sy} C{sx + GAP_X // 2},{sy} {ex - GAP_X // 2},{ey} {ex},{ey}"
    return f'<path class="edge" d="{path}" marker-end="url(#arrow)"/>'


def task_anchor(name: str) -> str:
    """The id of a task's section in the report."""
    return "task-" + "".join(character if character.isalnum() else "-" for character in name)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = ["TaskNode", "graph_of", "graph_svg", "levels", "task_anchor"]
