"""The one resources type: an amount of cpu (millicores), memory (MiB) and whole gpus.

The scheduler adds, subtracts and compares amounts of it for quotas and capacity; the launch layer
asks for one per worker, and each launch backend spells it the way its platform does (Kubernetes
quantities, SLURM's --cpus-per-task and --mem, a Vertex machine's accelerator count). Amounts are
read from Kubernetes-style quantities ("500m", "2", "4Gi"); a bad one raises InputError naming its field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kubeforge.errors import InputError

RESOURCE_NAMES = ("cpu", "memory", "gpu")
_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_MEMORY_UNITS = {"": 1 / 1024**2, "k": 1e3 / 1024**2, "M": 1e6 / 1024**2, "G": 1e9 / 1024**2, "T": 1e12 / 1024**2}
_MEMORY_UNITS |= {"ki": 1 / 1024, "mi": 1.0, "gi": 1024.0, "ti": 1024.0**2}


@dataclass(frozen=True, slots=True)
class Resources:
    """An amount of each schedulable resource: cpu millicores, memory MiB and whole gpus."""

    cpu_m: int = 0
    memory_mb: int = 0
    gpu: int = 0

    def __add__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m + other.cpu_m, self.memory_mb + other.memory_mb, self.gpu + other.gpu)

    def __sub__(self, other: Resources) -> Resources:
        return Resources(self.cpu_m - other.cpu_m, self.memory_mb - other.memory_mb, self.gpu - other.gpu)

    def times(self, count: int) -> Resources:
        """This amount `count` times over (all workers of a gang); itself, not a copy, for one worker."""
        if count == 1:
            return self
        return Resources(self.cpu_m * count, self.memory_mb * count, self.gpu * count)

    def fits_in(self, limit: Resources) -> bool:
        """True when every component is at most the limit's."""
        return self.cpu_m <= limit.cpu_m and self.memory_mb <= limit.memory_mb and self.gpu <= limit.gpu

    def fits_with(self, extra: Resources, limit: Resources) -> bool:
        """True when this amount plus `extra` is at most the limit (the sum is never built)."""
        return (
            self.cpu_m + extra.cpu_m <= limit.cpu_m
            and self.memory_mb + extra.memory_mb <= limit.memory_mb
            and self.gpu + extra.gpu <= limit.gpu
        )

    def minimum(self, other: Resources) -> Resources:
        """The component-wise minimum."""
        return Resources(min(self.cpu_m, other.cpu_m), min(self.memory_mb, other.memory_mb), min(self.gpu, other.gpu))

    def dominant_share(self, capacity: Resources) -> float:
        """The largest fraction of `capacity` this amount takes (Dominant Resource Fairness)."""
        shares = [
            used / total
            for used, total in (
                (self.cpu_m, capacity.cpu_m),
                (self.memory_mb, capacity.memory_mb),
                (self.gpu, capacity.gpu),
            )
            if total > 0
        ]
        return max(shares, default=0.0)

    def to_dict(self) -> dict[str, str | int]:
        """The Kubernetes-style form the API and the store use: {"cpu": "500m", "memory": "512Mi", "gpu": 0}."""
        return {"cpu": f"{self.cpu_m}m", "memory": f"{self.memory_mb}Mi", "gpu": self.gpu}

    @classmethod
    def parse(cls, value: object, field: str) -> Resources:
        """Read {"cpu": "500m"|0.5, "memory": "2Gi"|MiB, "gpu": 1}; unknown keys and bad amounts raise InputError."""
        if not isinstance(value, Mapping):
            raise InputError(f"{field}: expected an object like {{'cpu': '500m', 'memory': '1Gi', 'gpu': 0}}")
        unknown = sorted(set(map(str, value)) - set(RESOURCE_NAMES))
        if unknown:
            raise InputError(f"{field}: unknown resource(s) {unknown}; valid: {', '.join(RESOURCE_NAMES)}")
        return cls(
            cpu_m=parse_cpu(value.get("cpu", 0), f"{field}.cpu"),
            memory_mb=parse_memory(value.get("memory", 0), f"{field}.memory"),
            gpu=parse_count(value.get("gpu", 0), f"{field}.gpu"),
        )

    @property
    def cpu_quantity(self) -> str:
        """cpu as a Kubernetes quantity: whole cores as cores ("2"), else millicores ("500m")."""
        return str(self.cpu_m // 1000) if self.cpu_m % 1000 == 0 else f"{self.cpu_m}m"

    @property
    def memory_quantity(self) -> str:
        """memory as a Kubernetes quantity: whole GiB as "2Gi", else MiB ("512Mi")."""
        return f"{self.memory_mb // 1024}Gi" if self.memory_mb % 1024 == 0 else f"{self.memory_mb}Mi"

    def whole_cpus(self) -> int:
        """cpu rounded up to whole cores, at least 1 (2000m -> 2, 500m -> 1), for platforms that count cores."""
        return max(1, -(-self.cpu_m // 1000))


def parse_cpu(value: object, field: str) -> int:
    """CPU as millicores: 2, 0.5, "2", "500m"."""
    number, unit = _split(value, field)
    if unit not in ("", "m"):
        raise InputError(f"{field}: cpu unit {unit!r} is unknown; write cores (0.5) or millicores ('500m')")
    return round(number if unit == "m" else number * 1000)


def parse_memory(value: object, field: str) -> int:
    """Memory as MiB: a number is MiB; strings take Ki, Mi, Gi, Ti, M, G or bytes."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _non_negative(round(value), field)
    number, unit = _split(value, field)
    factor = _MEMORY_UNITS.get(unit, _MEMORY_UNITS.get(unit.lower()))
    if factor is None:
        raise InputError(f"{field}: memory unit {unit!r} is unknown; use Ki, Mi, Gi, Ti, M or G")
    return round(number * factor)


def parse_count(value: object, field: str) -> int:
    """A whole number of devices (gpus): 0, 1, "2"; anything else raises InputError naming `field`."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"{field}: expected a whole number of devices, got {value!r}")
    try:
        return _non_negative(int(value), field)
    except ValueError:
        raise InputError(f"{field}: expected a whole number of devices, got {value!r}") from None


def _split(value: object, field: str) -> tuple[float, str]:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InputError(f"{field}: expected a number or a quantity string, got {value!r}")
    match = _QUANTITY.match(str(value))
    if not match:
        raise InputError(f"{field}: {value!r} is not a quantity; write e.g. '500m', '2', '4Gi'")
    number = float(match.group(1))
    if number > 1e12:
        raise InputError(f"{field}: {value!r} is too large")
    return number, match.group(2)


def _non_negative(number: int, field: str) -> int:
    if number < 0 or number > 10**12:
        raise InputError(f"{field}: {number} is out of range; use 0 or more")
    return number


__all__ = ["RESOURCE_NAMES", "Resources", "parse_count", "parse_cpu", "parse_memory"]
