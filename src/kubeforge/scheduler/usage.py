"""Per-queue usage against quota and borrowing (GET /v1/usage) and its history (GET /v1/usage/history).

Usage is the scheduler's own accounting: what the jobs holding resources (admitted, running,
stopping) hold, gang totals, counted against their queue's nominal quota as the dispatcher's cache
counts them. With a leading dispatcher in this process the jobs come from its cache; otherwise from
the store's active jobs (the records the dispatcher restores from), so an API replica answers the same.

History needs no sampler: it is computed from the job records themselves (admitted_at, finished_at)
over a bounded window, bucket by bucket, as each queue's average dominant share of its nominal quota
(above 1.0 while it borrows), with the teams' decayed fair-share values the dispatcher persists.

Token rules: every token sees each queue's totals (like GET /v1/queues, which lists every queue);
a team token sees only its own team's part of them, the admin every team's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from kubeforge.resources import Resources
from kubeforge.scheduler.model import Job, JobState, QueueSpec

if TYPE_CHECKING:
    from kubeforge.scheduler.dispatcher import Dispatcher
    from kubeforge.scheduler.store.base import SqlStore

HOLDING = (JobState.ADMITTED, JobState.RUNNING, JobState.STOPPING)
DEFAULT_WINDOW_S, MIN_WINDOW_S, MAX_WINDOW_S = 3600, 60, 7 * 86400
DEFAULT_BUCKETS, MAX_BUCKETS = 60, 240
MAX_HISTORY_JOBS = 50_000
"""The most job records one history answer reads (newest first); `truncated` says when it hit this."""


def holding_jobs(dispatcher: Dispatcher | None, store: SqlStore) -> tuple[list[Job], str]:
    """The jobs holding resources now, and where that came from ("dispatcher" or "store")."""
    if dispatcher is not None and dispatcher.leader:
        with dispatcher.lock:
            return list(dispatcher.scheduler.cache.holding.values()), "dispatcher"
    return [job for job in store.active_jobs() if job.state in HOLDING], "store"


def usage_report(queues: Iterable[QueueSpec], holding: Iterable[Job], team: str, admin: bool) -> dict[str, Any]:
    """Each queue's use of its quota, what it borrows, and (per the token rules) its teams' parts."""
    used: dict[str, Resources] = {}
    by_team: dict[str, dict[str, Resources]] = {}
    for job in holding:
        queue, total = job.spec.queue, job.spec.total
        used[queue] = used.get(queue, Resources()) + total
        teams = by_team.setdefault(queue, {})
        teams[job.spec.team] = teams.get(job.spec.team, Resources()) + total
    cohorts: dict[str, dict[str, Resources]] = {}
    views = []
    for spec in queues:
        held = used.get(spec.name, Resources())
        if spec.cohort:
            cohort = cohorts.setdefault(spec.cohort, {"pool": Resources(), "used": Resources()})
            cohort["pool"], cohort["used"] = cohort["pool"] + spec.nominal, cohort["used"] + held
        views.append(
            {
                "name": spec.name,
                "cohort": spec.cohort,
                "nominal": spec.nominal.to_dict(),
                "borrowing_limit": spec.borrowing_limit.to_dict(),
                "used": held.to_dict(),
                "borrowed": _above(held, spec.nominal).to_dict(),
                "share": round(held.dominant_share(spec.nominal), 6),
                "teams": {
                    name: amount.to_dict()
                    for name, amount in sorted(by_team.get(spec.name, {}).items())
                    if admin or name == team
                },
            }
        )
    return {
        "queues": views,
        "cohorts": {
            name: {key: value.to_dict() for key, value in sums.items()} for name, sums in sorted(cohorts.items())
        },
    }


def usage_history(
    queues: Iterable[QueueSpec],
    jobs: Iterable[Job],
    fair_share: Mapping[str, tuple[float, float]],
    window: tuple[float, float, int],
    team: str,
    admin: bool,
) -> dict[str, Any]:
    """Each queue's average dominant share of its nominal quota per bucket of `window` (start, end, buckets),
    its teams' parts (per the token rules), and the teams' persisted fair-share values."""
    start, end, buckets = window
    width = (end - start) / buckets
    nominal = {spec.name: spec.nominal for spec in queues}
    totals = {name: [0.0] * buckets for name in nominal}
    parts: dict[str, dict[str, list[float]]] = {name: {} for name in nominal}
    for job in jobs:
        quota = nominal.get(job.spec.queue)
        if quota is None or job.admitted_at is None or job.state is JobState.PENDING:
            continue  # a deleted queue, or a job back in its queue (preempted): it holds nothing now
        share = job.spec.total.dominant_share(quota)
        held_from, held_to = max(float(job.admitted_at), start), min(float(job.finished_at or end), end)
        series = [totals[job.spec.queue]]
        if admin or job.spec.team == team:
            series.append(parts[job.spec.queue].setdefault(job.spec.team, [0.0] * buckets))
        first = max(0, int((held_from - start) // width))
        for index in range(first, min(buckets, int((held_to - start) // width) + 1)):
            low, high = start + index * width, start + (index + 1) * width
            overlap = min(high, held_to) - max(low, held_from)
            if overlap > 0:
                for values in series:
                    values[index] += share * overlap / width
    return {
        "start": start,
        "end": end,
        "bucket_s": width,
        "times": [round(start + index * width, 3) for index in range(buckets)],
        "queues": [
            {
                "name": name,
                "share": [round(value, 4) for value in totals[name]],
                "teams": {
                    owner: [round(value, 4) for value in values] for owner, values in sorted(parts[name].items())
                },
            }
            for name in sorted(nominal)
        ],
        "fair_share": {
            owner: {"history": round(value, 6), "updated_at": at}
            for owner, (value, at) in sorted(fair_share.items())
            if admin or owner == team
        },
    }


def _rounded(values: list[float]) -> list[float]:
    return [round(value, 4) for value in values]


def _above(amount: Resources, limit: Resources) -> Resources:
    return Resources(
        max(0, amount.cpu_m - limit.cpu_m), max(0, amount.memory_mb - limit.memory_mb), max(0, amount.gpu - limit.gpu)
    )


__all__ = [
    "DEFAULT_BUCKETS",
    "DEFAULT_WINDOW_S",
    "HOLDING",
    "MAX_BUCKETS",
    "MAX_HISTORY_JOBS",
    "MAX_WINDOW_S",
    "MIN_WINDOW_S",
    "holding_jobs",
    "usage_history",
    "usage_report",
]
