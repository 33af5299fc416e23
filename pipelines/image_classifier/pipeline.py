"""Image classifier: 8x8 digit images as 64 pixel columns -> preprocess -> CNN (DDP) -> evaluate.

The same components as the tabular pipeline; only the training component's `model_type` changes
(`cnn` reshapes a square number of pixel features into a one-channel image).
"""

from kfp import dsl
from kfp.dsl import Dataset

from kubeforge.components.evaluation.classification import evaluate_op
from kubeforge.components.preprocess.tabular import preprocess_op
from kubeforge.components.training.pytorch import train_op

DEFAULT_THRESHOLDS = '{"accuracy": 0.9}'


@dsl.pipeline(
    name="image-classifier",
    description="Train a small CNN with PyTorch DDP on images given as pixel columns (e.g. scikit-learn's digits).",
)
def image_classifier(
    data_uri: str,
    label_column: str = "target",
    workers: int = 2,
    epochs: int = 10,
    batch_size: int = 32,
    learning_rate: float = 0.003,
    conv_channels: str = "8,16",
    thresholds: str = DEFAULT_THRESHOLDS,
) -> None:
    """Train and evaluate a CNN on the pixel table at `data_uri` (one column per pixel, plus the label)."""
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-data")
    # Pixels share one scale; clipping outliers per pixel would distort rare strokes.
    prepared = preprocess_op(data=data.output, label_column=label_column, clip_high_quantile=0.0)
    trained = train_op(
        train_data=prepared.outputs["train_data"],
        validation_data=prepared.outputs["validation_data"],
        preprocessor=prepared.outputs["preprocessor"],
        model_type="cnn",
        hidden_layers=conv_channels,
        workers=workers,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
    )
    evaluate_op(test_data=prepared.outputs["test_data"], model=trained.outputs["model"], thresholds=thresholds)


__all__ = ["DEFAULT_THRESHOLDS", "image_classifier"]
