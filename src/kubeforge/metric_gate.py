"""The promotion gate shared by the evaluation components: thresholds per metric and a champion margin.

Each evaluation declares which of its metrics are better when higher (a threshold is a minimum)
and which when lower (a threshold is a maximum); the gate passes when every threshold is met and,
given a champion, the candidate's `gate_metric` is at most `max_regression` worse than the champion's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from kubeforge.errors import InputError

_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MetricGate:
    """The metrics of one kind of evaluation and the direction in which each improves."""

    higher_is_better: tuple[str, ...]
    lower_is_better: tuple[str, ...]
    unit_interval: tuple[str, ...]  # metrics whose thresholds must lie in [0, 1]
    example: str  # a thresholds object for error messages

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric name, higher-is-better first."""
        return (*self.higher_is_better, *self.lower_is_better)

    def parse_thresholds(self, text: str) -> dict[str, float]:
        """Thresholds given as a JSON object (empty text: none), checked by `check_thresholds`."""
        if not text.strip():
            return {}
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"thresholds: not valid JSON ({exc.msg} at position {exc.pos})") from exc
        if not isinstance(parsed, dict):
            raise InputError(f"thresholds: expected a JSON object such as {self.example}")
        return self.check_thresholds(parsed)

    def check_thresholds(self, thresholds: dict[str, Any]) -> dict[str, float]:
        """Each threshold as a float; an unknown metric or a value out of range is an InputError naming it."""
        checked: dict[str, float] = {}
        for name, value in thresholds.items():
            if name not in self.metrics:
                raise InputError(f"thresholds: unknown metric {name!r}; valid metrics are {', '.join(self.metrics)}")
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise InputError(f"thresholds: {name!r} must be a finite number, got {value!r}")
            if name in self.unit_interval and not 0.0 <= value <= 1.0:
                raise InputError(f"thresholds: {name!r} is {value}; it is a minimum between 0 and 1")
            if name in self.lower_is_better and value < 0:
                raise InputError(f"thresholds: {name!r} is {value}; it is a maximum and must be >= 0")
            checked[name] = float(value)
        return checked

    def check_champion_margin(self, gate_metric: str, max_regression: float) -> None:
        """Refuse an unknown `gate_metric` or a negative or non-finite `max_regression`."""
        if gate_metric not in self.metrics:
            raise InputError(f"gate_metric is {gate_metric!r}; valid metrics are {', '.join(self.metrics)}")
        if not (math.isfinite(max_regression) and max_regression >= 0):
            raise InputError(f"max_regression is {max_regression}; give a number >= 0 (0 means no regression allowed)")

    def reasons(
        self,
        metrics: dict[str, float],
        thresholds: dict[str, float],
        champion: dict[str, float] | None,
        gate_metric: str,
        max_regression: float,
    ) -> list[str]:
        """Why the gate fails (empty: it passes)."""
        reasons: list[str] = []
        for name, required in thresholds.items():
            value = metrics[name]
            if name in self.lower_is_better and value > required + _TOLERANCE:
                reasons.append(f"{name} {value:.4f} > allowed maximum {required:.4f}")
            elif name in self.higher_is_better and value < required - _TOLERANCE:
                reasons.append(f"{name} {value:.4f} < required {required:.4f}")
        if champion is not None:
            value, best = metrics[gate_metric], champion[gate_metric]
            worse_by = value - best if gate_metric in self.lower_is_better else best - value
            if worse_by > max_regression + _TOLERANCE:
                reasons.append(
                    f"{gate_metric} {value:.4f} is {worse_by:.4f} worse than champion {best:.4f} "
                    f"(allowed {max_regression:.4f})"
                )
        return reasons

    def bound_text(self, name: str, limit: float | None) -> str:
        """A threshold as the report prints it: `>= 0.9`, `<= 0.3`, or `-`."""
        if limit is None:
            return "-"
        return f"{'<=' if name in self.lower_is_better else '>='} {limit:.4f}"

    def report_head(
        self,
        title: str,
        verdict: tuple[bool, int, list[str]],
        metrics: dict[str, float],
        champion: dict[str, float] | None,
        thresholds: dict[str, float],
    ) -> list[str]:
        """The Markdown report's title, the gate's verdict `(passed, test_rows, reasons)` and the table of
        metrics against the champion's and the thresholds."""
        passed, test_rows, reasons = verdict
        lines = [
            f"# {title}",
            "",
            f"Gate: **{'PASSED' if passed else 'FAILED'}** on {test_rows} test rows.",
            *(f"- {reason}" for reason in reasons),
            "",
            "| metric | model | champion | threshold |",
            "|---|---|---|---|",
        ]
        for name, value in metrics.items():
            best = f"{champion[name]:.4f}" if champion else "-"
            lines.append(f"| {name} | {value:.4f} | {best} | {self.bound_text(name, thresholds.get(name))} |")
        return lines


__all__ = ["MetricGate"]
