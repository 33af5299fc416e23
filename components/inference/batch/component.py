"""KFP definition of `inference/batch`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def batch_predict(
    data: Input[Dataset],
    model: Input[Model],
    predictions: Output[Dataset],
    output_format: str = "parquet",
    keep_columns: str = "",
    include_probabilities: bool = True,
    chunk_rows: int = 10000,
) -> int:
    """Score every row of a CSV/Parquet table with the Model artifact; returns the number of rows scored."""
    from kubeforge.components.inference.batch import core

    result = core.predict_table(
        data.path,
        model.path,
        predictions.path,
        core.BatchOptions(
            output_format=output_format,
            keep_columns=core.parse_keep_columns(keep_columns),
            include_probabilities=include_probabilities,
            chunk_rows=chunk_rows,
        ),
    )
    predictions.metadata["rows"] = result.rows
    predictions.metadata["format"] = output_format
    predictions.metadata["columns"] = result.columns
    predictions.metadata["unknown_category_rows"] = result.unknown_categories
    return int(result.rows)
