"""What SQLite and PostgreSQL stores share: the SQL, row mapping and the store's operations.

A client (the API) inserts jobs and requests cancellation, setting `inbox = 1`; the active
dispatcher claims inbox rows, applies them to its scheduler and persists every state change.
The dispatcher never writes `cancel_requested`, so a cancel racing a state change is not lost.
An array's spec is stored once (table `arrays`); its tasks read it from there.
"""

from __future__ import annotations

import heapq
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubeforge.errors import STORE_UNAVAILABLE, LeaseLostError, StoreUnavailable, redact
from kubeforge.scheduler.model import SHARED_INTS, Job, JobSpec, JobState, QueueSpec, Reason
from kubeforge.scheduler.store.schema import statements
from kubeforge.scheduler.store.tokens import TokenStore

_JOB_COLUMNS = (
    "id, spec, state, created_at, attempt, not_before, reason, admitted_at, finished_at, stop_deadline, "
    "handle, exit_code, cancel_requested, preemptions, array_id, array_index"
)
_INSERT = "INSERT INTO jobs (team, queue, spec, state, created_at) VALUES (?, ?, ?, 'pending', ?) RETURNING id"
_INSERT_FIRST_TASK = (
    "INSERT INTO jobs (team, queue, spec, state, created_at, array_index) "
    "VALUES (?, ?, '', 'pending', ?, ?) RETURNING id"
)
_INSERT_TASKS = (
    "INSERT INTO jobs (team, queue, spec, state, created_at, array_id, array_index) "
    "SELECT ?, ?, '', 'pending', ?, ?, task.value FROM {indices} ORDER BY task.value"
)
ACTIVE_PAGE = 20_000
"""How many rows `active_jobs` reads at a time."""
_ARRAY_IDS = "SELECT id FROM jobs WHERE array_id = ? ORDER BY array_index"
_TERMINAL = (JobState.SUCCEEDED.value, JobState.FAILED.value, JobState.CANCELLED.value)
"""The ends a job is stored in (never PREEMPTED: the scheduler requeues it); schema's jobs_active index names them."""
_NOT_TERMINAL = f"state NOT IN ({', '.join('?' * len(_TERMINAL))})"
HELD_NOW_SQL = (
    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE admitted_at IS NOT NULL AND finished_at IS NULL ORDER BY +id DESC LIMIT ?"
)
"""The jobs holding resources now, newest first (searched in the `jobs_finished` index)."""
FINISHED_SINCE_SQL = (
    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE admitted_at IS NOT NULL AND finished_at >= ? ORDER BY +id DESC LIMIT ?"
)
"""The jobs admitted and finished since a time, newest first (searched in `jobs_finished`)."""
_SAVE = (
    "UPDATE jobs SET state = ?, attempt = ?, not_before = ?, reason = ?, admitted_at = ?, finished_at = ?, "
    "stop_deadline = ?, handle = ?, exit_code = ?, preemptions = ? WHERE id = ?"
)


class Cursor(Protocol):
    """The part of a DB-API cursor the stores use."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement."""
        ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        """Run one statement for each row of parameters."""
        ...

    def fetchall(self) -> list[Any]:
        """All rows of the last statement."""
        ...

    def fetchone(self) -> Any:
        """The next row of the last statement."""
        ...


class SqlStore(TokenStore, ABC):
    """The scheduler's durable state; subclasses supply connections, transactions and the lease.

    Connection failures, lock timeouts and similar raise StoreUnavailable (a generic message,
    never the URL), so callers answer "retry later" instead of failing on a passing outage.
    """

    dialect: str = ""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor inside one write transaction (committed on exit, rolled back on error)."""

    def read(self) -> AbstractContextManager[Cursor]:
        """A cursor inside one read-only transaction, which takes no write lock."""
        return self.transaction()

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers a trivial query."""
        with self.read() as cur:
            cur.execute("SELECT 1").fetchone()

    @abstractmethod
    def acquire_lease(self) -> bool:
        """Try to become the one active dispatcher; True when this store now holds the lease."""

    def fenced(self) -> AbstractContextManager[Cursor]:
        """A write transaction of the lease holder: raises LeaseLostError once another dispatcher took the lease."""
        return self.transaction()

    def lease_lost(self) -> bool:
        """True when the lease this store acquired is gone (its session died); it must be acquired again."""
        return False

    @abstractmethod
    def close(self) -> None:
        """Release connections and the lease."""

    task_indices: str = ""
    """A table `task` with one `value` row per task index, read from the parameter `_indices_parameter` makes."""

    claim_lock: str = ""
    """Appended to the inbox SELECT so that concurrent claimers skip each other's rows."""
    migration_lock: str = ""
    """Run first in the migration transaction so that replicas starting together migrate once."""

    # -- schema -----------------------------------------------------------------------------

    def migrate(self) -> int:
        """Apply the migrations this database lacks; returns the schema version now in place."""
        with self.transaction() as cur:
            if self.migration_lock:
                cur.execute(self.migration_lock)
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
            current = int(row[0]) if row and row[0] is not None else 0
            for version, body in statements(self.dialect, current):
                for statement in body:
                    cur.execute(statement)
                cur.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
                current = version
        return current

    # -- jobs -------------------------------------------------------------------------------

    def submit(self, spec: JobSpec, now: float) -> int:
        """Record a new pending job durably; returns its id."""
        return self.submit_many([spec], now)[0]

    def submit_many(self, specs: Sequence[JobSpec], now: float) -> list[int]:
        """Record new pending jobs durably in one transaction (group commit); returns their ids in order."""
        return [ids[0] for ids in self.record([Submission(spec) for spec in specs], now)]

    def submit_array(self, spec: JobSpec, indices: Sequence[int], now: float) -> list[int]:
        """Record one pending job per task index, as one array; returns the task ids (the first is the array's id)."""
        return self.record([Submission(spec, tuple(indices))], now)[0]

    def record(self, submissions: Sequence[Submission], now: float) -> list[list[int]]:
        """Record single jobs and arrays durably in one transaction (group commit); the job ids of each, in order."""
        with self.transaction() as cur:
            return [self._insert(cur, submission, now) for submission in submissions]

    def _insert(self, cur: Cursor, submission: Submission, now: float) -> list[int]:
        spec = submission.spec
        text = json.dumps(spec.to_dict(), separators=(",", ":"))
        if not submission.indices:
            return [int(cur.execute(_INSERT, (spec.team, spec.queue, text, now)).fetchone()[0])]
        first, *rest = submission.indices
        array_id = int(cur.execute(_INSERT_FIRST_TASK, (spec.team, spec.queue, now, first)).fetchone()[0])
        cur.execute("UPDATE jobs SET array_id = ? WHERE id = ?", (array_id, array_id))
        cur.execute("INSERT INTO arrays (id, spec) VALUES (?, ?)", (array_id, text))
        if rest:  # the other tasks in one statement, rows made by the database
            cur.execute(
                _INSERT_TASKS.format(indices=self.task_indices),
                (spec.team, spec.queue, now, array_id, self._indices_parameter(rest)),
            )
        return [int(found[0]) for found in cur.execute(_ARRAY_IDS, (array_id,)).fetchall()]

    @abstractmethod
    def _indices_parameter(self, indices: list[int]) -> Any:
        """The parameter `task_indices` reads the task indices from."""

    def get(self, job_id: int) -> Job | None:
        """One job, or None."""
        with self.read() as cur:
            found = _jobs(cur, cur.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchall())
        return found[0] if found else None

    def list_jobs(
        self, team: str | None = None, active_only: bool = False, limit: int = 1000, before_id: int | None = None
    ) -> list[Job]:
        """Jobs newest first, optionally of one team, only those not finished, and only older than `before_id`
        (the last id of the previous page)."""
        where: list[str] = []
        params: list[Any] = []
        if team is not None:
            where.append("team = ?")
            params.append(team)
        if active_only:
            where.append(_NOT_TERMINAL)
            params.extend(_TERMINAL)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self.read() as cur:
            rows = cur.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs {clause} ORDER BY id DESC LIMIT ?", (*params, limit)
            ).fetchall()
            return _jobs(cur, rows)

    def active_jobs(self, page: int = ACTIVE_PAGE) -> Iterator[Job]:
        """Every job not finished, oldest first (a restarting dispatcher restores these). Read `page` rows at a
        time, one short read each, so that a million rows never sit in memory beside their jobs; the jobs of
        one array share one JobSpec across pages."""
        specs = _Specs()
        after = 0
        while True:
            with self.read() as cur:
                rows = cur.execute(
                    f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {_NOT_TERMINAL} AND id > ? ORDER BY id LIMIT ?",
                    (*_TERMINAL, after, page),
                ).fetchall()
                jobs = _jobs(cur, rows, specs)
            yield from jobs
            if len(rows) < page:
                return
            after = int(rows[-1][0])

    def held_since(self, since: float, limit: int) -> list[Job]:
        """Up to `limit` jobs, newest first, admitted at some time and not finished before `since` (usage history).

        Two reads, each served by the `jobs_finished` index: the jobs holding resources now, and those that
        finished since `since` (ordered by `+id` so the planner searches the index instead of walking every id).
        """
        with self.read() as cur:
            holding = cur.execute(HELD_NOW_SQL, (limit,)).fetchall()
            finished = cur.execute(FINISHED_SINCE_SQL, (since, limit)).fetchall()
            newest = heapq.merge(holding, finished, key=lambda row: -int(row[0]))
            return _jobs(cur, list(itertools.islice(newest, limit)))

    def count_pending(self, team: str, queue: str) -> int:
        """How many of `team`'s jobs wait in `queue`."""
        with self.read() as cur:
            row = cur.execute(
                "SELECT COUNT(*) FROM jobs WHERE team = ? AND queue = ? AND state = 'pending'", (team, queue)
            ).fetchone()
        return int(row[0])

    def array_tasks(self, array_id: int, after_index: int = -1, limit: int = 1_000_000) -> list[Job]:
        """The tasks of one array by index (those after `after_index`, at most `limit`); empty when there is
        no such array. Every task shares one JobSpec object: the array's spec is stored and parsed once."""
        with self.read() as cur:
            rows = cur.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE array_id = ? AND array_index > ? ORDER BY array_index LIMIT ?",
                (array_id, after_index, limit),
            ).fetchall()
            return _jobs(cur, rows)

    def request_cancel_array(self, array_id: int) -> list[int]:
        """Ask the dispatcher to cancel every unfinished task of an array; the ids of those tasks."""
        return self._request_cancel_where("array_id", array_id)

    def request_cancel(self, job_id: int) -> bool:
        """Ask the dispatcher to cancel a job; False when it has already finished."""
        return bool(self._request_cancel_where("id", job_id))

    def _request_cancel_where(self, column: str, value: int) -> list[int]:
        """Mark the unfinished jobs whose `column` is `value` for cancelling; their ids, sorted."""
        with self.transaction() as cur:
            rows = cur.execute(
                f"UPDATE jobs SET cancel_requested = 1, inbox = 1 WHERE {column} = ? "
                f"AND state NOT IN ({', '.join('?' * len(_TERMINAL))}) RETURNING id",
                (value, *_TERMINAL),
            ).fetchall()
        return sorted(int(row[0]) for row in rows)

    def claim_inbox(self, limit: int = 10_000) -> list[Job]:
        """Take the jobs clients changed since the last claim (new ones and cancel requests)."""
        with self.fenced() as cur:
            rows = cur.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE inbox = 1 ORDER BY id LIMIT ?{self.claim_lock}", (limit,)
            ).fetchall()
            if rows:
                ids = [row[0] for row in rows]
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    cur.execute(f"UPDATE jobs SET inbox = 0 WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            return _jobs(cur, rows)

    def save(self, jobs: Iterable[Job]) -> None:
        """Persist the scheduler-owned fields of changed jobs, all in one transaction."""
        rows = [
            (
                job.state.value,
                job.attempt,
                job.not_before,
                job.reason,
                job.admitted_at,
                job.finished_at,
                job.stop_deadline,
                job.handle,
                job.exit_code,
                job.preemptions,
                job.id,
            )
            for job in jobs
        ]
        if rows:
            with self.fenced() as cur:
                cur.executemany(_SAVE, rows)

    def state_of(self, job_id: int) -> JobState | None:
        """A job's state, or None when there is no such job."""
        with self.read() as cur:
            row = cur.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return JobState(row[0]) if row else None

    # -- queues, tokens, fair share -----------------------------------------------------------

    def put_queue(self, spec: QueueSpec) -> None:
        """Create or replace a queue."""
        self.put_queues([spec])

    def put_queues(self, specs: Sequence[QueueSpec]) -> None:
        """Create or replace queues, all in one transaction under one change number."""
        rows = list({spec.name: json.dumps(spec.to_dict()) for spec in specs}.items())  # the last of a name wins
        with self.transaction() as cur:
            version = _next_queue_version(cur)
            for start in range(0, len(rows), 500):
                names = [name for name, _ in rows[start : start + 500]]
                cur.execute(f"DELETE FROM queues WHERE name IN ({', '.join('?' * len(names))})", names)
            cur.executemany(
                "INSERT INTO queues (name, spec, version) VALUES (?, ?, ?)", [(*row, version) for row in rows]
            )

    def delete_queue(self, name: str) -> bool:
        """Remove a queue; False when there was none."""
        with self.transaction() as cur:
            if cur.execute("DELETE FROM queues WHERE name = ? RETURNING name", (name,)).fetchone() is None:
                return False
            _next_queue_version(cur)
            return True

    def queues(self) -> list[QueueSpec]:
        """Every queue, by name."""
        with self.read() as cur:
            rows = cur.execute("SELECT spec FROM queues ORDER BY name").fetchall()
        return [QueueSpec.from_dict(json.loads(row[0])) for row in rows]

    def queue_changes(self, since: int) -> QueueChanges:
        """What changed in the queues after change number `since` (-1: everything): one small read when nothing
        did; otherwise the changed queues' definitions and every queue's name (to tell which were deleted)."""
        with self.read() as cur:
            version = int(cur.execute("SELECT version FROM queue_changes WHERE id = 1").fetchone()[0])
            if version == since:
                return QueueChanges(version)
            # the number is read first: a queue written after it is read again next time, never missed
            rows = cur.execute(
                "SELECT name, CASE WHEN version > ? THEN spec ELSE '' END FROM queues ORDER BY name", (since,)
            ).fetchall()
        changed = [QueueSpec.from_dict(json.loads(text)) for _, text in rows if text]
        return QueueChanges(version, changed, frozenset(str(name) for name, _ in rows))

    def save_fair_share(self, history: dict[str, float], now: float) -> None:
        """Persist the teams' decayed usage."""
        with self.fenced() as cur:
            cur.execute("DELETE FROM fair_share")
            cur.executemany(
                "INSERT INTO fair_share (team, history, updated_at) VALUES (?, ?, ?)",
                [(team, value, now) for team, value in history.items()],
            )

    def fair_share(self) -> dict[str, tuple[float, float]]:
        """Each team's (history, updated_at)."""
        with self.read() as cur:
            rows = cur.execute("SELECT team, history, updated_at FROM fair_share").fetchall()
        return {str(team): (float(history), float(at)) for team, history, at in rows}


@dataclass(frozen=True)
class QueueChanges:
    """The queues changed after a change number: `names` is None when nothing changed at all."""

    version: int
    changed: list[QueueSpec] = field(default_factory=list)
    names: frozenset[str] | None = None


def _next_queue_version(cur: Cursor) -> int:
    """Take the next queue change number (its row lock orders concurrent queue writes)."""
    return int(
        cur.execute("UPDATE queue_changes SET version = version + 1 WHERE id = 1 RETURNING version").fetchone()[0]
    )


@dataclass(frozen=True)
class Submission:
    """One submitted job, or with `indices` an array of one task per index."""

    spec: JobSpec
    indices: tuple[int, ...] = ()


class _Specs:
    """The specs read so far: each stored text parsed once, each array's spec (and id) one object for its tasks."""

    def __init__(self) -> None:
        self.parsed: dict[str, JobSpec] = {}
        self.arrays: dict[int, tuple[int, JobSpec]] = {}
        self._created_at = 0.0

    def created_at(self, value: float) -> float:
        """`value`, as the float object read last when equal to it: the tasks of an array, created together,
        share one."""
        if value != self._created_at:
            self._created_at = value
        return self._created_at

    def parse(self, text: str) -> JobSpec:
        spec = self.parsed.get(text)
        if spec is None:
            spec = self.parsed[text] = JobSpec.from_dict(json.loads(text), stored=True)
        return spec

    def read_arrays(self, cur: Cursor, array_ids: Iterable[int]) -> None:
        """Read the specs of the arrays not read yet."""
        missing = sorted({array_id for array_id in array_ids if array_id not in self.arrays})
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            found = cur.execute(f"SELECT id, spec FROM arrays WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
            for array_id, text in found.fetchall():
                self.arrays[int(array_id)] = (int(array_id), self.parse(text))


def _jobs(cur: Cursor, rows: Sequence[Sequence[Any]], specs: _Specs | None = None) -> list[Job]:
    """Jobs from their rows (read in the same transaction as `cur`). Array tasks have an empty spec: their
    arrays' specs are read once each; every spec text is parsed once, so an array's tasks share one JobSpec.
    Stored training configurations are not re-validated: one that no longer validates fails its own job at
    launch instead of stopping every read."""
    specs = specs or _Specs()
    specs.read_arrays(cur, (int(row[14]) for row in rows if not row[1]))
    return [
        _job(row, specs.arrays[int(row[14])] if not row[1] else (row[14], specs.parse(row[1])), specs) for row in rows
    ]


_STATES = {state.value: state for state in JobState}


def _reason(text: str) -> tuple[Reason, str]:
    """A stored reason's code and detail; most jobs share a handful of texts, parsed once each."""
    found = _REASONS.get(text)
    if found is None:
        found = Reason.parse(text)
        if not found[1]:
            _REASONS[text] = found
    return found


_REASONS: dict[str, tuple[Reason, str]] = {}


def _job(row: Sequence[Any], array: tuple[int | None, JobSpec], specs: _Specs) -> Job:
    array_id, spec = array
    return Job(
        int(row[0]),
        spec,
        specs.created_at(float(row[3])),
        _STATES[row[2]],
        int(row[4]),
        float(row[5]) or 0.0,  # the one shared 0.0 rather than a float per job
        *_reason(str(row[6])),
        row[7],
        row[8],
        row[9],
        str(row[10]),
        row[11],
        bool(row[12]),
        int(row[13]),
        array_id,
        None if row[15] is None else SHARED_INTS(int(row[15])),
    )


__all__ = [
    "STORE_UNAVAILABLE",
    "Cursor",
    "LeaseLostError",
    "QueueChanges",
    "SqlStore",
    "StoreUnavailable",
    "Submission",
    "redact",
]
