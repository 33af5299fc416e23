"""What a finished study leaves: a leaderboard (Markdown and CSV) and its optimization-history plot."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import optuna
from matplotlib.figure import Figure
from optuna.trial import FrozenTrial, TrialState

from kubeforge.artifacts import atomic_output_dir

LEADERBOARD_MD = "leaderboard.md"
LEADERBOARD_CSV = "leaderboard.csv"
HISTORY_PNG = "optimization_history.png"


def trial_epochs(trial: FrozenTrial) -> int:
    """Epochs the trial trained (a pruned trial stops at its last reported epoch)."""
    return len(trial.intermediate_values)


def best_so_far_curve(study: optuna.Study) -> list[tuple[int, float]]:
    """(cumulative trial-epochs, best completed value so far) after each finished trial, in trial order."""
    minimize = study.direction is optuna.study.StudyDirection.MINIMIZE
    spent, best, curve = 0, None, []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        spent += trial_epochs(trial)
        if trial.state is TrialState.COMPLETE and trial.value is not None:
            better = best is None or (trial.value < best if minimize else trial.value > best)
            best = trial.value if better else best
        if best is not None:
            curve.append((spent, best))
    return curve


def ranked(study: optuna.Study) -> list[FrozenTrial]:
    """Completed trials best first, then pruned ones by their last value, then failed ones."""
    sign = 1.0 if study.direction is optuna.study.StudyDirection.MINIMIZE else -1.0

    def key(trial: FrozenTrial) -> tuple[int, float]:
        order = {TrialState.COMPLETE: 0, TrialState.PRUNED: 1}.get(trial.state, 2)
        last = trial.value if trial.value is not None else _last_value(trial)
        return order, sign * last if last is not None else float("inf")

    return sorted(study.get_trials(deepcopy=False), key=key)


def write_report(study: optuna.Study, metric: str, folder: str) -> None:
    """Write leaderboard.md, leaderboard.csv and optimization_history.png into `folder`, atomically."""
    trials = ranked(study)
    with atomic_output_dir(folder) as staged:
        (staged / LEADERBOARD_MD).write_text(leaderboard_markdown(trials, metric, study.direction.name.lower()))
        with (staged / LEADERBOARD_CSV).open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["rank", "trial", "state", metric, "epochs", "params"])
            for rank, trial in enumerate(trials, start=1):
                writer.writerow(
                    [
                        rank,
                        trial.number,
                        trial.state.name.lower(),
                        _shown(trial),
                        trial_epochs(trial),
                        json.dumps(trial.params, sort_keys=True),
                    ]
                )
        plot_history(study, metric, staged / HISTORY_PNG)


def leaderboard_markdown(trials: list[FrozenTrial], metric: str, direction: str) -> str:
    """The ranking as a Markdown table."""
    lines = [
        f"# Tuning leaderboard ({metric}, {direction})",
        "",
        "| rank | trial | state | value | epochs | params |",
        "|---|---|---|---|---|---|",
    ]
    for rank, trial in enumerate(trials, start=1):
        params = json.dumps(trial.params, sort_keys=True)
        lines.append(
            f"| {rank} | {trial.number} | {trial.state.name.lower()} | {_shown(trial)} | {trial_epochs(trial)} "
            f"| `{params}` |"
        )
    return "\n".join(lines) + "\n"


def plot_history(study: optuna.Study, metric: str, path: Path) -> Path:
    """Each trial's value (pruned ones at their last epoch) and the best so far, by trial number."""
    figure = Figure(figsize=(7, 4))
    axes = figure.subplots()
    for state, marker, colour in ((TrialState.COMPLETE, "o", "tab:blue"), (TrialState.PRUNED, "x", "tab:grey")):
        points = [(t.number, _last_value(t)) for t in study.get_trials(deepcopy=False, states=(state,))]
        shown = [(number, value) for number, value in points if value is not None]
        if shown:
            axes.scatter(*zip(*shown, strict=True), marker=marker, color=colour, label=state.name.lower())
    best: list[tuple[int, float]] = []
    minimize = study.direction is optuna.study.StudyDirection.MINIMIZE
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        value = float(trial.value) if trial.value is not None else None
        if value is not None and (not best or (value < best[-1][1] if minimize else value > best[-1][1])):
            best.append((trial.number, value))
        elif best:
            best.append((trial.number, best[-1][1]))
    if best:
        axes.step(*zip(*best, strict=True), where="post", color="tab:red", label="best so far")
    axes.set(xlabel="trial", ylabel=metric, title="Optimization history")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def _last_value(trial: FrozenTrial) -> float | None:
    if trial.value is not None:
        return float(trial.value)
    if trial.intermediate_values:
        return float(trial.intermediate_values[max(trial.intermediate_values)])
    return None


def _shown(trial: FrozenTrial) -> str:
    value = _last_value(trial)
    return "" if value is None else f"{value:.4f}"


__all__ = [
    "HISTORY_PNG",
    "LEADERBOARD_CSV",
    "LEADERBOARD_MD",
    "best_so_far_curve",
    "leaderboard_markdown",
    "plot_history",
    "ranked",
    "trial_epochs",
    "write_report",
]
