"""One object per distinct value, for the immutable values many jobs carry alike (resources, commands)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

Value = TypeVar("Value", bound=Hashable)


class SharedValues(Generic[Value]):
    """Hands back the first object seen equal to a value: the jobs that ask for the same amount or run the
    same command hold one object between them. Only the first `limit` distinct values are kept, so a stream
    of values that never repeat cannot grow it without bound."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._values: dict[Value, Value] = {}

    def __call__(self, value: Value) -> Value:
        """The shared object equal to `value` (`value` itself when it is the first, or past the limit)."""
        found = self._values.get(value)
        if found is not None:
            return found
        if len(self._values) < self.limit:
            self._values[value] = value
        return value

    def __len__(self) -> int:
        return len(self._values)


__all__ = ["SharedValues"]
