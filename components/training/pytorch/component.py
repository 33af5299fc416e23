"""KFP definition of `training/pytorch`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def train_pytorch(
    train_data: Input[Dataset],
    validation_data: Input[Dataset],
    preprocessor: Input[Artifact],
    model: Output[Model],
    metrics: Output[Metrics],
    backend: str = "local",
    workers: int = 2,
    epochs: int = 20,
    batch_size: int = 32,
    learning_rate: float = 0.001,
    weight_decay: float = 0.0,
    hidden_layers: str = "64,32",
    dropout: float = 0.1,
    seed: int = 42,
    checkpoint_dir: str = "",
    max_restarts: int = 0,
) -> None:
    """Train an MLP with PyTorch DDP across `workers` processes; outputs a servable Model artifact."""
    from kubeforge.components.training.pytorch import core

    result = core.train_model(
        core.TrainInputs(train_data.path, validation_data.path, preprocessor.path),
        model_dir=model.path,
        params=core.TrainParams(
            backend=backend,
            workers=workers,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            hidden_layers=hidden_layers,
            dropout=dropout,
            seed=seed,
            checkpoint_dir=checkpoint_dir,
            max_restarts=max_restarts,
        ),
    )
    for name, value in result.final_metrics.items():
        metrics.log_metric(name, value)
    model.metadata.update(result.model_metadata)
