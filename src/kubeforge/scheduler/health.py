"""What /healthz reports: whether the dispatcher's loop is alive and when its last step succeeded."""

from __future__ import annotations

import time
from typing import Any

STALE_AFTER_S = 30.0
"""A dispatcher whose steps have all failed for this long (the store stays unreachable) is reported unhealthy."""


def dispatcher_health(dispatcher: Any | None) -> tuple[int, dict[str, Any]]:
    """(status, report): 200 with the dispatcher's liveness and last successful step; 503 when its loop has
    died, or has stepped before but not successfully for STALE_AFTER_S. An API without an in-process
    dispatcher (another replica dispatches) reports only itself."""
    if dispatcher is None:
        return 200, {"status": "ok", "dispatcher": None}
    report: dict[str, Any] = dict(dispatcher.health())
    last_step_at: float | None = report.get("last_step_at")
    age = None if last_step_at is None else max(time.time() - last_step_at, 0.0)
    report["last_step_age_s"] = age
    healthy = bool(report.get("alive")) and (age is None or age <= STALE_AFTER_S)
    return (200 if healthy else 503), {"status": "ok" if healthy else "unhealthy", "dispatcher": report}


__all__ = ["STALE_AFTER_S", "dispatcher_health"]
