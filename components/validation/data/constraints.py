"""Schema and value constraints checked with DuckDB over Parquet/CSV (streaming, bounded memory).

Constraints come as JSON: `{"column": {"kind": "numeric", "min": 0, "max": 120, "max_null_rate": 0.05,
"unique": false, "required": true}, "city": {"kind": "categorical", "allowed": ["berlin", "paris"]}}`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import duckdb

from kubeforge.errors import InputError

_KINDS = ("numeric", "categorical")
_KEYS = {"kind", "min", "max", "allowed", "max_null_rate", "unique", "required"}


@dataclass(frozen=True)
class ColumnRule:
    """What one column must satisfy; unset bounds are not checked."""

    name: str
    kind: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None
    max_null_rate: float | None = None
    unique: bool = False
    required: bool = True


@dataclass(frozen=True)
class Finding:
    """The outcome of one check on one column."""

    check: str
    column: str
    passed: bool
    detail: str


@dataclass
class _Findings:
    items: list[Finding] = field(default_factory=list)

    def add(self, check: str, column: str, passed: bool, detail: str) -> None:
        self.items.append(Finding(check, column, passed, detail))


def parse_constraints(text: str) -> list[ColumnRule]:
    """Parse the constraints JSON, naming the column and key of any bad entry."""
    if not text.strip():
        return []
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"constraints: not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(data, dict):
        raise InputError('constraints: expected a JSON object such as {"age": {"kind": "numeric", "min": 0}}')
    return [_rule(str(name), spec) for name, spec in data.items()]


def _rule(name: str, spec: Any) -> ColumnRule:
    if not isinstance(spec, dict):
        raise InputError(f"constraints: column '{name}' needs an object of checks, got {spec!r}")
    unknown = set(spec) - _KEYS
    if unknown:
        raise InputError(
            f"constraints: column '{name}' has unknown key(s) {sorted(unknown)}; valid keys are {sorted(_KEYS)}"
        )
    kind = spec.get("kind")
    if kind is not None and kind not in _KINDS:
        raise InputError(f"constraints: column '{name}' has kind {kind!r}; valid kinds are {', '.join(_KINDS)}")
    rate = spec.get("max_null_rate")
    if rate is not None and not (isinstance(rate, int | float) and 0 <= rate <= 1):
        raise InputError(f"constraints: column '{name}': max_null_rate is {rate!r}; give a number from 0 to 1")
    allowed = spec.get("allowed")
    if allowed is not None and not (isinstance(allowed, list) and allowed):
        raise InputError(f"constraints: column '{name}': allowed must be a non-empty list of categories")
    return ColumnRule(
        name=name,
        kind=kind,
        minimum=_number(name, "min", spec.get("min")),
        maximum=_number(name, "max", spec.get("max")),
        allowed=tuple(map(str, allowed)) if allowed is not None else None,
        max_null_rate=float(rate) if rate is not None else None,
        unique=bool(spec.get("unique", False)),
        required=bool(spec.get("required", True)),
    )


def _number(name: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"constraints: column '{name}': {key} is {value!r}; give a number")
    return float(value)


def check_constraints(
    connection: duckdb.DuckDBPyConnection, relation: str, types: dict[str, str], rules: list[ColumnRule]
) -> list[Finding]:
    """Run every rule against `relation` (an SQL relation whose column types are `types`)."""
    findings = _Findings()
    total = int(connection.sql(f"SELECT count(*) FROM {relation}").fetchall()[0][0])
    for rule in rules:
        if rule.name not in types:
            findings.add("present", rule.name, not rule.required, "column is missing")
            continue
        column = _quote(rule.name)
        if rule.kind is not None:
            numeric = _is_numeric(types[rule.name])
            findings.add("kind", rule.name, numeric == (rule.kind == "numeric"), f"stored as {types[rule.name]}")
        nulls = int(connection.sql(f"SELECT count(*) - count({column}) FROM {relation}").fetchall()[0][0])
        if rule.max_null_rate is not None:
            rate = nulls / total if total else 0.0
            findings.add(
                "null_rate", rule.name, rate <= rule.max_null_rate, f"{rate:.2%} null (max {rule.max_null_rate:.2%})"
            )
        if rule.minimum is not None or rule.maximum is not None:
            _check_range(connection, relation, rule, findings)
        if rule.allowed is not None:
            listed = ", ".join("'" + value.replace("'", "''") + "'" for value in rule.allowed)
            rows = connection.sql(
                f"SELECT CAST({column} AS VARCHAR) AS v, count(*) FROM {relation} "
                f"WHERE {column} IS NOT NULL AND CAST({column} AS VARCHAR) NOT IN ({listed}) "
                "GROUP BY v ORDER BY 2 DESC, 1 LIMIT 5"
            ).fetchall()
            shown = ", ".join(f"{value!r} ({count})" for value, count in rows)
            findings.add("allowed", rule.name, not rows, f"unexpected: {shown}" if rows else "all values allowed")
        if rule.unique:
            duplicates = int(
                connection.sql(
                    f"SELECT count(*) - count(DISTINCT {column}) FROM {relation} WHERE {column} IS NOT NULL"
                ).fetchall()[0][0]
            )
            findings.add("unique", rule.name, duplicates == 0, f"{duplicates} duplicate value(s)")
    return findings.items


def _check_range(connection: duckdb.DuckDBPyConnection, relation: str, rule: ColumnRule, findings: _Findings) -> None:
    column = _quote(rule.name)
    value = f"TRY_CAST({column} AS DOUBLE)"
    conditions = []
    if rule.minimum is not None:
        conditions.append(f"{value} < {rule.minimum!r}")
    if rule.maximum is not None:
        conditions.append(f"{value} > {rule.maximum!r}")
    outside, low, high = connection.sql(
        f"SELECT count(*) FILTER (WHERE {' OR '.join(conditions)}), min({value}), max({value}) FROM {relation}"
    ).fetchall()[0]
    findings.add(
        "range",
        rule.name,
        outside == 0,
        f"{outside} value(s) outside [{rule.minimum}, {rule.maximum}]; observed [{low}, {high}]",
    )


def _is_numeric(kind: str) -> bool:
    return kind in {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE"} or kind.startswith(
        ("DECIMAL", "U")
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


__all__ = ["ColumnRule", "Finding", "check_constraints", "parse_constraints"]
