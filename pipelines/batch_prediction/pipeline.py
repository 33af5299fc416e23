"""Batch prediction: score a table with an existing Model artifact and write the predictions."""

from kfp import dsl
from kfp.dsl import Dataset, Model

from kubeforge.components.inference.batch import batch_predict_op


@dsl.pipeline(
    name="batch-prediction",
    description="Score a CSV/Parquet table with a kubeforge Model artifact; write one prediction per row.",
)
def batch_prediction(
    data_uri: str,
    model_uri: str,
    output_format: str = "parquet",
    keep_columns: str = "",
    include_probabilities: bool = True,
) -> None:
    """Score the table at `data_uri` with the Model artifact at `model_uri`."""
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-data")
    model = dsl.importer(artifact_uri=model_uri, artifact_class=Model, reimport=False)
    model.set_display_name("import-model")
    batch_predict_op(
        data=data.output,
        model=model.output,
        output_format=output_format,
        keep_columns=keep_columns,
        include_probabilities=include_probabilities,
    )


__all__ = ["batch_prediction"]
