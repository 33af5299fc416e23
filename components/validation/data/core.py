"""Data validation: constraints on a dataset, drift against a reference, an HTML report, a verdict.

`validate` reads CSV/Parquet (local, s3://, gs://) with DuckDB, checks the constraints, compares
every shared column with the reference dataset (PSI for categorical, KS for numeric columns),
writes the HTML report and a JSON summary atomically, and returns whether everything passed, which
the component returns so a pipeline can gate later steps with `dsl.If`.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb

from kubeforge.artifacts import atomic_output
from kubeforge.categories import listed
from kubeforge.errors import InputError
from kubeforge.ingest import local_table
from kubeforge.preprocess_engine.duckdb_source import Source, open_source

from .constraints import Finding, check_constraints, parse_constraints
from .drift import DriftResult, categorical_drift, numeric_drift
from .report import render_html


@dataclass(frozen=True)
class DriftOptions:
    """Drift thresholds: PSI above `psi_threshold` or a KS p-value below `ks_p_value` is drift."""

    psi_threshold: float = 0.2
    ks_p_value: float = 0.01
    sample_rows: int = 200_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.psi_threshold <= 0:
            raise InputError(f"psi_threshold is {self.psi_threshold}; give a positive number such as 0.2")
        if not 0 < self.ks_p_value < 1:
            raise InputError(f"ks_p_value is {self.ks_p_value}; give a probability such as 0.01")
        if self.sample_rows < 100:
            raise InputError(f"sample_rows is {self.sample_rows}; give at least 100")


@dataclass(frozen=True)
class ValidationResult:
    """The verdict, every constraint finding and every drift result."""

    passed: bool
    rows: int
    findings: list[Finding]
    drift: list[DriftResult]

    def to_json(self) -> dict[str, object]:
        """A JSON-ready summary."""
        return {
            "passed": self.passed,
            "rows": self.rows,
            "findings": [asdict(f) for f in self.findings],
            "drift": [asdict(d) for d in self.drift],
        }


def failure_error(result: ValidationResult, report: str) -> InputError:
    """A short error for a failed validation: the failed checks and drifted columns (a handful), and the report."""
    failed = [f"{f.column}: {f.check} ({f.detail})" for f in result.findings if not f.passed]
    drifted = [f"{d.column}: {d.method} {d.statistic:.3g}" for d in result.drift if not d.passed]
    parts = []
    if failed:
        parts.append(f"{len(failed)} failed check(s): {listed(failed)}")
    if drifted:
        parts.append(f"{len(drifted)} drifted column(s): {listed(drifted)}")
    return InputError(f"data validation failed on {result.rows} rows; {'; '.join(parts)}; full report: {report}")


def validate(
    data: str,
    report_path: str,
    summary_path: str,
    constraints_json: str = "",
    reference: str = "",
    drift: DriftOptions | None = None,
) -> ValidationResult:
    """Validate `data`; write the HTML report and JSON summary (both or neither); return the verdict.

    A reference with other columns than the data is an InputError naming them: drift is only
    meaningful between datasets of the same shape.
    """
    rules = parse_constraints(constraints_json)
    drift = drift or DriftOptions()
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubeforge-validate-")))
        connection = duckdb.connect(config={"temp_directory": str(scratch)})
        stack.callback(connection.close)
        for name in ("data", "reference"):
            (scratch / name).mkdir()
        current = open_source(connection, stack.enter_context(local_table(data)), data, scratch / "data", [])
        findings = check_constraints(connection, current.relation, current.types, rules)
        drift_results: list[DriftResult] = []
        if reference:
            base = open_source(
                connection, stack.enter_context(local_table(reference)), reference, scratch / "reference", []
            )
            _check_same_columns(current, base)
            drift_results = _drift(connection, current, base, drift)
        rows = int(connection.sql(f"SELECT count(*) FROM {current.relation}").fetchall()[0][0])
    passed = all(f.passed for f in findings) and all(d.passed for d in drift_results)
    result = ValidationResult(passed=passed, rows=rows, findings=findings, drift=drift_results)
    with atomic_output(report_path) as html, atomic_output(summary_path) as summary:
        html.write_text(render_html(result, data=data, reference=reference))
        summary.write_text(json.dumps(result.to_json(), indent=2, allow_nan=True))
    return result


def _check_same_columns(current: Source, reference: Source) -> None:
    only_current = [c for c in current.types if c not in reference.types]
    only_reference = [c for c in reference.types if c not in current.types]
    if only_current or only_reference:
        raise InputError(
            f"reference {reference.shown} has other columns than {current.shown}: "
            f"only in the data {only_current}, only in the reference {only_reference}; "
            "compare datasets with the same columns"
        )


def _drift(
    connection: duckdb.DuckDBPyConnection, current: Source, reference: Source, options: DriftOptions
) -> list[DriftResult]:
    results = []
    for column in current.types:
        if current.is_numeric(column) and reference.is_numeric(column):
            results.append(
                numeric_drift(
                    connection,
                    current.relation,
                    reference.relation,
                    column,
                    options.ks_p_value,
                    options.sample_rows,
                    options.seed,
                )
            )
        else:
            results.append(
                categorical_drift(connection, current.relation, reference.relation, column, options.psi_threshold)
            )
    return results


__all__ = ["DriftOptions", "ValidationResult", "failure_error", "validate"]
