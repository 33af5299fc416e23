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
    job_handle: Output[Artifact],
    backend: str = "local",
    workers: int = 2,
    nproc_per_node: int = 0,
    epochs: int = 20,
    batch_size: int = 32,
    gradient_accumulation_steps: int = 1,
    learning_rate: float = 0.001,
    weight_decay: float = 0.0,
    model_type: str = "mlp",
    hidden_layers: str = "64,32",
    dropout: float = 0.1,
    mixed_precision: str = "no",
    strategy: str = "ddp",
    seed: int = 42,
    checkpoint_dir: str = "",
    max_restarts: int = 0,
    image: str = "ghcr.io/kubeforge/kubeforge:0.1.0",
    cpu: str = "1",
    memory: str = "2Gi",
    gpus: int = 0,
    backend_options: str = "{}",
    class_weighting: str = "none",
    regression_loss: str = "mse",
    tracking_uri: str = "",
    tracking_required: bool = True,
    run_id: str = "",
    checkpoint_every_steps: int = 0,
) -> None:
    """Train with PyTorch DDP/FSDP on `backend` (local, slurm, pytorchjob, trainjob, vertex, queue).

    The run's folder, checkpoints and staging are derived from this task's outputs (or `run_id`) and
    the job's handle is written beside them before waiting, so a retried task re-attaches to its job
    while it runs, or resumes from the last checkpoint once it is gone; never a second job.
    SIGTERM (a preemption) makes the workers checkpoint at their current step; the job is requeued and
    resumes there. `checkpoint_every_steps` adds checkpoints every N optimizer steps (0: per epoch).
    `class_weighting` weights the cross-entropy per class: none, balanced (from the training split's
    class counts) or preprocessor (the weights preprocess/tabular stored with class_weights="balanced").
    `regression_loss` (mse, huber) is a regression's loss on the standardized target; the target's scaler
    travels in the preprocessor, so the model predicts in the label's units.
    `tracking_uri` (else $MLFLOW_TRACKING_URI; neither: no tracking) logs the run to MLflow; an unreachable
    server fails the task, or only warns with `tracking_required=False`.
    """
    import dataclasses

    from kubeforge import tracking
    from kubeforge.components.training.pytorch import core
    from kubeforge.training.config import parse_hidden_layers

    shared = backend in ("local", "slurm", "queue")  # queue: the kubeforge scheduler on this filesystem
    result = core.train_model(
        core.TrainInputs(
            train_data.path if shared else train_data.uri,
            validation_data.path if shared else validation_data.uri,
            preprocessor.path if shared else preprocessor.uri,
        ),
        model_dir=model.path,
        params=(
            params := core.TrainParams(
                backend=backend,
                workers=workers,
                nproc_per_node=nproc_per_node,
                epochs=epochs,
                batch_size=batch_size,
                gradient_accumulation_steps=gradient_accumulation_steps,
                learning_rate=learning_rate,
                weight_decay=weight_decay,
                model=model_type,
                hidden_layers=parse_hidden_layers(hidden_layers),
                dropout=dropout,
                mixed_precision=mixed_precision,
                strategy=strategy,
                seed=seed,
                checkpoint_dir=checkpoint_dir,
                max_restarts=max_restarts,
                image=image,
                cpu=cpu,
                memory=memory,
                gpus=gpus,
                backend_options=backend_options,
                class_weighting=class_weighting,
                regression_loss=regression_loss,
                run_id=run_id,
                checkpoint_every_steps=checkpoint_every_steps,
            )
        ),
        handle_path=job_handle.path,
        staging_uri=f"{model.uri}-staging",
    )
    for name, value in result.final_metrics.items():
        metrics.log_metric(name, value)
    model.metadata.update(result.model_metadata)
    model.metadata.update(
        tracking.log_training_run(
            tracking_uri, model.path, model.uri, params=dataclasses.asdict(params), required=tracking_required
        )
    )
