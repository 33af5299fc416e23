"""KFP definition of `validation/data`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def validate_data(
    data: Input[Dataset],
    report: Output[HTML],
    summary: Output[Artifact],
    constraints_json: str = "",
    reference_uri: str = "",
    psi_threshold: float = 0.2,
    ks_p_value: float = 0.01,
    sample_rows: int = 200000,
    fail_on_violation: bool = False,
) -> bool:
    """Check constraints and drift against a reference dataset; returns True when everything passed.

    Gate later steps with `with dsl.If(validate_task.output == True): ...`, or set `fail_on_violation`
    to stop the pipeline here with a short error listing what failed (the report is written first).
    """
    from kubeforge.components.validation.data import core

    result = core.validate(
        data.path,
        report.path,
        summary.path,
        constraints_json=constraints_json,
        reference=reference_uri,
        drift=core.DriftOptions(psi_threshold=psi_threshold, ks_p_value=ks_p_value, sample_rows=sample_rows),
    )
    summary.metadata["passed"] = result.passed
    summary.metadata["failed_checks"] = sum(not f.passed for f in result.findings)
    summary.metadata["drifted_columns"] = sum(not d.passed for d in result.drift)
    if fail_on_violation and not result.passed:
        raise core.failure_error(result, report.uri)
    passed: bool = result.passed
    return passed
