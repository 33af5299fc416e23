"""The scheduler's objects: job specs as submitted, jobs as tracked, queues with quotas."""

from __future__ import annotations

import dataclasses
import enum
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast, overload

from kubeforge.errors import InputError
from kubeforge.launch.state import JobState
from kubeforge.resources import Resources
from kubeforge.scheduler.sharing import SharedValues

PRIORITY_CLASSES: dict[str, int] = {"low": 100, "normal": 500, "high": 1000, "critical": 10000}
"""Named priority classes; a job may also give a number."""

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$")
_SPEC_FIELDS = {
    "name", "team", "queue", "command", "image", "training", "resources", "workers", "priority",
    "max_runtime_s", "retries", "backoff_s", "depends_on", "env",
}  # fmt: skip
MAX_WORKERS = 4096
MAX_RUNTIME_LIMIT_S = 366 * 86400.0
MAX_ARRAY_TASKS = 10_000
"""The most tasks one array submission may hold."""
MAX_ARRAY_INDEX = 10_000_000
MAX_ENV = 256
MAX_ENV_VALUE = 32_768
MAX_DEPENDENCIES = 1000
DEFAULT_MIN_REQUEST = Resources(cpu_m=10, memory_mb=1)
"""The least a job's worker may request in a queue unless the queue says otherwise: never zero, so
that every job counts against quota."""
DEFAULT_MAX_PENDING_PER_TEAM = 100_000
_NO_ENV: Mapping[str, str] = MappingProxyType({})
"""The environment of every job that sets none (one shared, read-only object)."""
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_ARRAY_PART = re.compile(r"^(\d{1,8})(?:-(\d{1,8})(?::(\d{1,8}))?)?$")


_QUEUE_FIELDS = {
    "name", "nominal", "cohort", "borrowing_limit", "min_request", "max_pending_per_team", "max_running_per_team",
    "max_array_tasks",
}  # fmt: skip


class Reason(enum.Enum):
    """Why a job is where it is: a small typed code the scheduler decides on, shown to users as its text.

    A job keeps the code and a free-text detail (an exit code, a count, the backend's message); the
    text shown is the code's value with `{}` replaced by the detail, or followed by ": detail"."""

    SUBMITTED = "submitted"
    QUOTA = "waiting for quota"
    RECLAIM = "its nominal quota is lent to other queues"
    NO_QUEUE = "its queue does not exist"
    CAPACITY = "waiting for capacity"
    RESERVED = "capacity reserved for an earlier job"
    DEPENDENCY = "waiting for dependencies"
    BACKOFF = "retry backoff"
    PREEMPTED = "preempted"
    PRIORITY = "a higher-priority job is ahead"
    TEAM_CAP = "the team has as many jobs running in this queue as the queue allows"
    PREEMPTING = "preempting {} job(s)"
    VICTIMS_STOPPING = "waiting for preempted jobs to stop"
    ADMITTED = "admitted"
    BACKFILLED = "admitted by backfill"
    CANCELLED = "cancelled"
    MAX_RUNTIME = "exceeded its maximum runtime"
    SUCCEEDED = "succeeded"
    EXIT_CODE = "exit code {}"
    DEPENDENCY_FAILED = "dependency {} did not succeed"
    LAUNCH_FAILED = "launch failed"
    OTHER = "{}"
    """A text no code matches (written by an older version): all of it is the detail."""

    def render(self, detail: str = "") -> str:
        """The text users see for this code with `detail`."""
        template = str(self.value)
        if "{}" in template:
            return template.replace("{}", detail, 1)
        return f"{template}: {detail}" if detail else template

    @classmethod
    def parse(cls, text: str) -> tuple[Reason, str]:
        """The code and detail a text was rendered from (OTHER and the whole text when none matches)."""
        found = _REASON_TEXTS.get(text)
        if found is not None:
            return found, ""
        for reason, prefix, suffix in _REASON_TEMPLATES:
            if text.startswith(prefix) and text.endswith(suffix) and len(text) >= len(prefix) + len(suffix):
                return reason, text[len(prefix) : len(text) - len(suffix)]
        for reason in _REASONS_BY_LENGTH:
            if text.startswith(f"{reason.value}: "):
                return reason, text[len(reason.value) + 2 :]
        return cls.OTHER, text


_REASON_TEXTS = {reason.value: reason for reason in Reason if "{}" not in reason.value}
_REASON_TEMPLATES: list[tuple[Reason, str, str]] = [
    (reason, str(reason.value).partition("{}")[0], str(reason.value).partition("{}")[2])
    for reason in Reason
    if "{}" in reason.value and reason is not Reason.OTHER
]
_REASONS_BY_LENGTH = sorted(_REASON_TEXTS.values(), key=lambda reason: -len(reason.value))


_SHARED_AMOUNTS: SharedValues[Resources] = SharedValues()
_SHARED_COMMANDS: SharedValues[tuple[str, ...]] = SharedValues()
_SHARED_FLOATS: SharedValues[float] = SharedValues()
SHARED_INTS: SharedValues[int] = SharedValues()
"""Whole numbers many jobs carry alike (priorities, array task indices past Python's cached small ints)."""


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a user submits: a command (in an image) or a training spec, with per-worker resources."""

    team: str
    queue: str
    command: tuple[str, ...] = ()
    name: str = ""
    image: str = ""
    training: Mapping[str, Any] | None = None
    resources: Resources = field(default_factory=lambda: Resources(1000, 512, 0))
    workers: int = 1
    priority: int = PRIORITY_CLASSES["normal"]
    max_runtime_s: float = 3600.0
    retries: int = 0
    backoff_s: float = 10.0
    depends_on: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: _NO_ENV)
    total: Resources = field(init=False, repr=False, compare=False)
    """What the whole gang takes: per-worker resources times the worker count (computed once)."""

    def __post_init__(self) -> None:
        # names repeat across many jobs: one string object each, not one per job
        for name in ("team", "queue", "image"):
            object.__setattr__(self, name, sys.intern(getattr(self, name)))
        # equal amounts are one object, shared by every spec that asks for them
        object.__setattr__(self, "resources", _SHARED_AMOUNTS(self.resources))
        object.__setattr__(self, "total", _SHARED_AMOUNTS(self.resources.times(self.workers)))
        object.__setattr__(self, "command", _SHARED_COMMANDS(self.command))
        # numbers too: a parsed 3600.0 or 500 is an object of its own (only exact floats and ints are shared,
        # so that a value keeps its type and its JSON form)
        if type(self.priority) is int:
            object.__setattr__(self, "priority", SHARED_INTS(self.priority))
        for name in ("max_runtime_s", "backoff_s"):
            value = getattr(self, name)
            if type(value) is float:
                object.__setattr__(self, name, _SHARED_FLOATS(value))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as accepted by `from_dict`."""
        return {
            "name": self.name,
            "team": self.team,
            "queue": self.queue,
            "command": list(self.command),
            "image": self.image,
            "training": dict(self.training) if self.training is not None else None,
            "resources": self.resources.to_dict(),
            "workers": self.workers,
            "priority": self.priority,
            "max_runtime_s": self.max_runtime_s,
            "retries": self.retries,
            "backoff_s": self.backoff_s,
            "depends_on": list(self.depends_on),
            "env": dict(self.env),
        }

    @classmethod
    def from_dict(cls, data: object, stored: bool = False) -> JobSpec:
        """Validate a submitted job; every problem raises InputError naming the field. The training
        configuration is checked by TrainConfig itself, the code that builds it at launch.

        `stored=True` reads back a spec the store holds: the checks added after it was recorded (the
        training configuration, variable names) are left to the launch, which fails that one job,
        so that one old spec cannot stop every read of the store."""
        if not isinstance(data, Mapping):
            raise InputError("job: expected a JSON object with at least 'queue' and 'command' or 'training'")
        unknown = sorted(set(map(str, data)) - _SPEC_FIELDS)
        if unknown:
            raise InputError(f"job: unknown field(s) {unknown}; valid: {', '.join(sorted(_SPEC_FIELDS))}")
        command = _string_list(data.get("command", []), "command", strict=not stored)
        training = data.get("training")
        if training is not None and not isinstance(training, Mapping):
            raise InputError("training: expected an object (a TrainConfig as JSON) or null")
        if bool(command) == (training is not None):
            raise InputError("job: give exactly one of 'command' (a list of strings) or 'training' (an object)")
        if training is not None and not stored:
            from kubeforge.training.config import TrainConfig

            TrainConfig.from_dict(training, prefix="training.")
        env = _env(data.get("env", {}), check_names=not stored)
        return cls(
            name=_optional_name(data.get("name", ""), "name"),
            team=check_name(data.get("team"), "team"),
            queue=check_name(data.get("queue"), "queue"),
            command=tuple(command),
            image=_string(data.get("image", ""), "image"),
            training=dict(training) if training is not None else None,
            resources=Resources.parse(data.get("resources", {"cpu": 1, "memory": "512Mi"}), "resources"),
            workers=_int(data.get("workers", 1), "workers", 1, MAX_WORKERS),
            priority=_priority(data.get("priority", "normal")),
            max_runtime_s=_number(data.get("max_runtime_s", 3600.0), "max_runtime_s", 0.001, MAX_RUNTIME_LIMIT_S),
            retries=_int(data.get("retries", 0), "retries", 0, 100),
            backoff_s=_number(data.get("backoff_s", 10.0), "backoff_s", 0.0, 86400.0),
            depends_on=tuple(
                _int(item, "depends_on[]", 1, 2**62) for item in _dependencies(data.get("depends_on", []))
            ),
            env=env,
        )


@dataclass(slots=True)
class JobRun:
    """What a job has once it was admitted, retried, held back or asked to stop: most pending jobs never
    were, and carry no such object (see `Job.run`). These defaults are what a job without one reads."""

    admitted_at: float | None = None
    finished_at: float | None = None
    stop_deadline: float | None = None
    handle: str = ""
    exit_code: int | None = None
    attempt: int = 0
    preemptions: int = 0
    not_before: float = 0.0
    cancel_requested: bool = False


Value = TypeVar("Value")


class _RunField(Generic[Value]):
    """A field of `Job` kept in its `JobRun`: reads give JobRun's default while the job has none, and
    writing that default to a job without one creates none."""

    def __init__(self) -> None:
        self.name = ""
        self.default: Value

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.default = cast(Value, JobRun.__dataclass_fields__[name].default)

    @overload
    def __get__(self, job: None, owner: type) -> _RunField[Value]: ...
    @overload
    def __get__(self, job: Job, owner: type) -> Value: ...
    def __get__(self, job: Job | None, owner: type) -> Value | _RunField[Value]:
        if job is None:
            return self
        run = job.run
        return self.default if run is None else cast(Value, getattr(run, self.name))

    def __set__(self, job: Job, value: Value) -> None:
        run = job.run
        if run is None:
            if value == self.default:
                return
            run = job.run = JobRun()
        setattr(run, self.name, value)


class Job:
    """A job as the scheduler tracks it; the store keeps the same fields.

    A million of these may wait in one scheduler, so a job holds only what a pending job needs; what it
    gains once launched or retried (handle, exit code, times, attempts) lives in `run`, created on the first
    write of such a field and read through the same attribute names."""

    __slots__ = (
        "array_id",
        "array_index",
        "created_at",
        "id",
        "queued",
        "reason_code",
        "reason_detail",
        "run",
        "spec",
        "state",
    )

    attempt: _RunField[int] = _RunField()
    not_before: _RunField[float] = _RunField()
    admitted_at: _RunField[float | None] = _RunField()
    finished_at: _RunField[float | None] = _RunField()
    stop_deadline: _RunField[float | None] = _RunField()
    handle: _RunField[str] = _RunField()
    exit_code: _RunField[int | None] = _RunField()
    cancel_requested: _RunField[bool] = _RunField()
    preemptions: _RunField[int] = _RunField()

    def __init__(
        self,
        id: int,
        spec: JobSpec,
        created_at: float,
        state: JobState = JobState.PENDING,
        attempt: int = 0,
        not_before: float = 0.0,
        reason_code: Reason = Reason.SUBMITTED,
        reason_detail: str = "",
        admitted_at: float | None = None,
        finished_at: float | None = None,
        stop_deadline: float | None = None,
        handle: str = "",
        exit_code: int | None = None,
        cancel_requested: bool = False,
        preemptions: int = 0,
        array_id: int | None = None,
        array_index: int | None = None,
    ) -> None:
        self.id, self.spec, self.created_at, self.state = id, spec, created_at, state
        self.reason_code: Reason = reason_code
        """Why the job is where it is: what the scheduler decides on."""
        self.reason_detail = reason_detail
        """What the code's text leaves open (an exit code, a count, the backend's message)."""
        self.array_id = array_id
        """The array this job is a task of (the id of its first task), or None."""
        self.array_index = array_index
        """This task's index within its array (`KUBEFORGE_ARRAY_TASK_ID` when it runs), or None."""
        self.queued = False
        """True while the job is in its queue's pending set (its heap or retry backoff); see QueueManager."""
        self.run: JobRun | None = None
        """What the job has once admitted, retried, held back or asked to stop; None until then."""
        if (  # one test, not a descriptor call per field: a restore builds a million jobs
            attempt or not_before or preemptions or handle or cancel_requested
            or admitted_at is not None or finished_at is not None or stop_deadline is not None or exit_code is not None
        ):  # fmt: skip
            self.run = JobRun(
                admitted_at=admitted_at, finished_at=finished_at, stop_deadline=stop_deadline, handle=handle,
                exit_code=exit_code, attempt=attempt, preemptions=preemptions, not_before=not_before,
                cancel_requested=cancel_requested,
            )  # fmt: skip

    def __repr__(self) -> str:
        return f"Job(id={self.id}, state={self.state.value}, queue={self.spec.queue!r}, reason={self.reason!r})"

    @property
    def reason(self) -> str:
        """The reason as users see it (the JSON `reason`): the code's text with its detail."""
        return self.reason_code.render(self.reason_detail)

    @reason.setter
    def reason(self, text: str) -> None:
        self.reason_code, self.reason_detail = Reason.parse(text)

    def because(self, code: Reason, detail: str = "") -> None:
        """Set the job's reason."""
        self.reason_code, self.reason_detail = code, detail

    @property
    def launch_key(self) -> str:
        """The idempotency key of this attempt's launch: a backend launches one key at most once."""
        return f"kf-{self.id}-{self.attempt}"

    @property
    def sort_key(self) -> tuple[int, float, int]:
        """Order within a queue: higher priority first, then older first."""
        return (-self.spec.priority, self.created_at, self.id)

    def __lt__(self, other: Job) -> bool:
        """Scheduling order within a queue (`sort_key`), so that a queue's heap holds the jobs themselves."""
        mine, theirs = self.spec.priority, other.spec.priority
        if mine != theirs:
            return mine > theirs
        return (self.created_at, self.id) < (other.created_at, other.id)

    @property
    def expected_end(self) -> float:
        """When the job will have ended at the latest (admission plus its maximum runtime)."""
        return (self.admitted_at or 0.0) + self.spec.max_runtime_s


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue with nominal quota; in a cohort it may borrow unused quota up to `borrowing_limit`."""

    name: str
    nominal: Resources
    cohort: str = ""
    borrowing_limit: Resources = field(default_factory=Resources)
    min_request: Resources = DEFAULT_MIN_REQUEST
    """The least each worker of a job must request (cpu and memory are never below 1m / 1Mi)."""
    max_pending_per_team: int = DEFAULT_MAX_PENDING_PER_TEAM
    """How many of one team's jobs may wait in this queue; a submission past it is refused (429)."""
    max_running_per_team: int = 0
    """How many of one team's jobs may hold resources in this queue at once (0: no cap but the quota)."""
    max_array_tasks: int = MAX_ARRAY_TASKS
    """The most tasks one array submitted to this queue may hold."""
    quota_limit: Resources = field(init=False, repr=False, compare=False)
    """The most the queue may ever hold: nominal plus what it may borrow (computed once)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "quota_limit", self.nominal + self.borrowing_limit)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, as accepted by `from_dict`."""
        return {
            "name": self.name,
            "nominal": self.nominal.to_dict(),
            "cohort": self.cohort,
            "borrowing_limit": self.borrowing_limit.to_dict(),
            "min_request": self.min_request.to_dict(),
            "max_pending_per_team": self.max_pending_per_team,
            "max_running_per_team": self.max_running_per_team,
            "max_array_tasks": self.max_array_tasks,
        }

    @classmethod
    def from_dict(cls, data: object) -> QueueSpec:
        """Validate a queue definition; problems raise InputError naming the field."""
        if not isinstance(data, Mapping):
            raise InputError("queue: expected a JSON object with 'name' and 'nominal'")
        unknown = sorted(set(map(str, data)) - _QUEUE_FIELDS)
        if unknown:
            raise InputError(f"queue: unknown field(s) {unknown}; valid: {', '.join(sorted(_QUEUE_FIELDS))}")
        minimum = Resources.parse(data.get("min_request", DEFAULT_MIN_REQUEST.to_dict()), "min_request")
        return cls(
            name=check_name(data.get("name"), "name"),
            nominal=Resources.parse(data.get("nominal"), "nominal"),
            cohort=_optional_name(data.get("cohort", ""), "cohort"),
            borrowing_limit=Resources.parse(data.get("borrowing_limit", {}), "borrowing_limit"),
            min_request=Resources(max(minimum.cpu_m, 1), max(minimum.memory_mb, 1), minimum.gpu),
            max_pending_per_team=_int(
                data.get("max_pending_per_team", DEFAULT_MAX_PENDING_PER_TEAM), "max_pending_per_team", 1, 10**9
            ),
            max_running_per_team=_int(data.get("max_running_per_team", 0), "max_running_per_team", 0, 10**9),
            max_array_tasks=_int(data.get("max_array_tasks", MAX_ARRAY_TASKS), "max_array_tasks", 1, MAX_ARRAY_TASKS),
        )

    def fill_request(self, spec: JobSpec, given: object) -> JobSpec:
        """`spec` with the resources its submission left out (`given`: its "resources" object) set to this
        queue's minimum, as a Kubernetes LimitRange fills in default requests."""
        if not isinstance(given, Mapping) or {"cpu", "memory"} <= set(given):
            return spec
        asked = spec.resources
        filled = Resources(
            asked.cpu_m if "cpu" in given else max(asked.cpu_m, self.min_request.cpu_m),
            asked.memory_mb if "memory" in given else max(asked.memory_mb, self.min_request.memory_mb),
            asked.gpu,
        )
        return dataclasses.replace(spec, resources=filled)

    def check_request(self, spec: JobSpec) -> None:
        """Raise InputError naming the resource when a worker of `spec` asks for less than `min_request`."""
        for name, asked, least in (
            ("cpu", spec.resources.cpu_m, self.min_request.cpu_m),
            ("memory", spec.resources.memory_mb, self.min_request.memory_mb),
            ("gpu", spec.resources.gpu, self.min_request.gpu),
        ):
            if asked < least:
                shown = self.min_request.to_dict()[name]
                raise InputError(
                    f"resources.{name}: {spec.resources.to_dict()[name]} per worker is below queue {self.name!r}'s "
                    f"minimum of {shown}; ask for at least that"
                )


def parse_array_indices(value: object, field: str = "array") -> tuple[int, ...]:
    """Task indices as `sbatch --array` takes them ("0-99", "0-99:10", "1,3,8-9") or a list of numbers;
    sorted, without repeats, at most MAX_ARRAY_TASKS; problems raise InputError naming `field`."""
    too_many = InputError(f"{field}: give 1 to {MAX_ARRAY_TASKS} task indices from 0 to {MAX_ARRAY_INDEX}")
    if isinstance(value, str):
        indices: set[int] = set()
        for part in value.replace(" ", "").split(","):
            match = _ARRAY_PART.match(part)
            if not match:
                raise InputError(
                    f"{field}: {part!r} is not an index or range; write e.g. '0-99', '0-99:10' or '1,3,8-9'"
                )
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) is not None else first
            step = int(match.group(3) or 1)
            if last < first or step < 1:
                raise InputError(f"{field}: {part!r} must run upwards with a step of 1 or more")
            if (last - first) // step >= MAX_ARRAY_TASKS:
                raise too_many
            indices.update(range(first, last + 1, step))
            if len(indices) > MAX_ARRAY_TASKS:
                raise too_many
    elif isinstance(value, list | tuple):
        indices = {_int(item, f"{field}[]", 0, MAX_ARRAY_INDEX) for item in value}
    else:
        raise InputError(f"{field}: expected a range like '0-99' or a list of task indices")
    if not indices or len(indices) > MAX_ARRAY_TASKS or max(indices) > MAX_ARRAY_INDEX:
        raise too_many
    return tuple(sorted(indices))


def _priority(value: object) -> int:
    if isinstance(value, str):
        if value not in PRIORITY_CLASSES:
            raise InputError(f"priority: {value!r} is not a class; valid: {', '.join(PRIORITY_CLASSES)} or a number")
        return PRIORITY_CLASSES[value]
    return _int(value, "priority", -(10**6), 10**6)


def _int(value: object, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{field}: expected a whole number from {low} to {high}, got {value!r}")
    return value


def _number(value: object, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InputError(f"{field}: expected a number from {low} to {high}, got {value!r}")
    return float(value)


def _string(value: object, field: str) -> str:
    if not isinstance(value, str) or len(value) > 1024:
        raise InputError(f"{field}: expected a string of at most 1024 characters")
    return value


def check_name(value: object, field: str) -> str:
    """A valid team, queue or job name, or InputError naming `field`."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise InputError(f"{field}: {value!r} is not a valid name; use 1-63 lowercase letters, digits, '-', '_', '.'")
    return value


def _optional_name(value: object, field: str) -> str:
    return "" if value in ("", None) else check_name(value, field)


def _dependencies(value: object) -> list[object]:
    if not isinstance(value, list | tuple) or len(value) > MAX_DEPENDENCIES:
        raise InputError(f"depends_on: expected a list of at most {MAX_DEPENDENCIES} job ids")
    return list(value)


def _env(value: object, check_names: bool = True) -> Mapping[str, str]:
    if not isinstance(value, Mapping) or (check_names and len(value) > MAX_ENV):
        raise InputError(f"env: expected an object of at most {MAX_ENV} names to string values")
    for name, item in value.items():
        if not isinstance(name, str):
            raise InputError(f"env: variable names are strings, got {name!r}")
        if not isinstance(item, str):
            raise InputError(f"env.{name}: expected a string, got {item!r:.40}")
        if not check_names:
            continue
        if not _ENV_NAME.match(name):
            raise InputError(f"env: {name!r} is not a variable name; use letters, digits and '_', not first a digit")
        if len(item) > MAX_ENV_VALUE or "\0" in item:
            raise InputError(f"env.{name}: at most {MAX_ENV_VALUE} characters, without NUL")
    return dict(value) if value else _NO_ENV


def _string_list(value: object, field: str, strict: bool = True) -> list[str]:
    if (
        not isinstance(value, list | tuple)
        or len(value) > 4096
        or not all(isinstance(item, str) for item in value)
        or (strict and not all(len(item) <= MAX_ENV_VALUE and "\0" not in item for item in value))
    ):
        raise InputError(f"{field}: expected a list of strings without NUL, e.g. ['python', 'train.py']")
    return list(value)


__all__ = [
    "MAX_ARRAY_TASKS",
    "MAX_WORKERS",
    "PRIORITY_CLASSES",
    "Job",
    "JobRun",
    "JobSpec",
    "JobState",
    "QueueSpec",
    "Reason",
    "check_name",
    "parse_array_indices",
]
