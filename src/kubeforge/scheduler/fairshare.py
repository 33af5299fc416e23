"""Fair share between teams on their dominant resource, with past usage decaying over time."""

from __future__ import annotations

from collections.abc import Mapping

from kubeforge.resources import Resources


class FairShare:
    """Each team's decayed dominant-share history; a lower `key` means the team goes first.

    History integrates the team's dominant share over time with exponential decay of
    `half_life_s`, normalised so that a team holding share s for a long time has history s.
    """

    def __init__(self, half_life_s: float = 3600.0) -> None:
        self.half_life_s = half_life_s
        self.history: dict[str, float] = {}
        self._last: float | None = None

    def advance(self, now: float, team_usage: Mapping[str, Resources], capacity: Resources) -> None:
        """Decay the history to `now` and add the usage held since the last call."""
        if self._last is None or now <= self._last:
            self._last = now if self._last is None else self._last
            return
        elapsed = now - self._last
        self._last = now
        keep = 0.5 ** (elapsed / self.half_life_s)
        gain = 1.0 - keep
        teams = set(self.history) | set(team_usage)
        for team in teams:
            share = team_usage.get(team, Resources()).dominant_share(capacity)
            value = self.history.get(team, 0.0) * keep + share * gain
            if value < 1e-9 and share == 0:
                self.history.pop(team, None)
            else:
                self.history[team] = value

    def key(self, team: str, current_share: float) -> float:
        """Ordering key: the share the team holds now plus its decayed history."""
        return current_share + self.history.get(team, 0.0)


__all__ = ["FairShare"]
