"""Champion/challenger: train a new model, compare it with the serving one, deploy only if it is better.

Both models are evaluated on the same test rows through their own preprocessors. The
challenger's evaluation gates on the thresholds and on being at least as good as the champion;
the champion's evaluation (with the challenger as its rival) tells whether the champion is at
least as good. Deployment needs the first gate to pass and the second to fail, so a tie keeps
the champion.

The champion comes from `champion_model_uri`, or, when `registered_model_name` is set, from the
MLflow model registry: the version its `champion_alias` points at (on `tracking_uri`, else
$MLFLOW_TRACKING_URI). Then the challenger is registered as a version with the `challenger` alias,
and a winner is promoted by moving `champion_alias` onto it; the version it leaves keeps
`previous_champion_alias`. A retried promotion finds its version and moves nothing twice.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from kfp import dsl
from kfp.dsl import Dataset, Model
from kfp.dsl.pipeline_channel import PipelineChannel

from kubeforge.components.evaluation.classification import evaluate_op
from kubeforge.components.preprocess.tabular import preprocess_op
from kubeforge.components.registry.mlflow import register_op
from kubeforge.components.registry.mlflow_fetch import fetch_op
from kubeforge.components.serving.deploy import deploy_op
from kubeforge.components.training.pytorch import train_op


@contextmanager
def _challenger_wins(
    test_data: PipelineChannel,
    challenger: PipelineChannel,
    champion: PipelineChannel,
    gate_metric: str,
    thresholds: str,
) -> Iterator[None]:
    """Evaluate both models on the same rows; the block runs only when the challenger beats the champion."""
    challenger_review = evaluate_op(
        test_data=test_data, model=challenger, champion_model=champion, gate_metric=gate_metric, thresholds=thresholds
    )
    champion_review = evaluate_op(
        test_data=test_data, model=champion, champion_model=challenger, gate_metric=gate_metric
    )
    # Conditions test each evaluation's single `Output` (kfp.local resolves those, not named outputs).
    with (
        dsl.If(challenger_review.outputs["Output"] == True, name="challenger-not-worse"),  # noqa: E712
        dsl.If(champion_review.outputs["Output"] == False, name="champion-beaten"),  # noqa: E712
    ):
        yield


@dsl.pipeline(
    name="champion-challenger",
    description="Train a challenger, evaluate it against the current champion model, deploy it only if better.",
)
def champion_challenger(
    data_uri: str,
    champion_model_uri: str = "",
    label_column: str = "target",
    model_name: str = "tabular-classifier",
    workers: int = 2,
    epochs: int = 30,
    learning_rate: float = 0.001,
    hidden_layers: str = "64,32",
    gate_metric: str = "roc_auc",
    thresholds: str = "{}",
    deploy_target: str = "local",
    registered_model_name: str = "",
    champion_alias: str = "champion",
    previous_champion_alias: str = "previous_champion",
    tracking_uri: str = "",
) -> None:
    """Challenge the champion (the Model at `champion_model_uri`, or the registry's `champion_alias` version
    of `registered_model_name`) with a model trained on `data_uri`; deploy (and promote) a winner."""
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-data")
    prepared = preprocess_op(data=data.output, label_column=label_column)
    test_data = prepared.outputs["test_data"]
    challenger = train_op(
        train_data=prepared.outputs["train_data"],
        validation_data=prepared.outputs["validation_data"],
        preprocessor=prepared.outputs["preprocessor"],
        workers=workers,
        epochs=epochs,
        learning_rate=learning_rate,
        hidden_layers=hidden_layers,
        tracking_uri=tracking_uri,
    )
    model = challenger.outputs["model"]
    # Evaluations are named evaluate-classifier (the challenger) and evaluate-classifier-2 (the champion)
    # when the champion comes by URI; evaluate-classifier-3 and -4 when it comes from the registry.
    with dsl.If(registered_model_name == "", name="champion-by-uri"):
        champion = dsl.importer(artifact_uri=champion_model_uri, artifact_class=Model, reimport=False)
        champion.set_display_name("import-champion")
        with _challenger_wins(test_data, model, champion.output, gate_metric, thresholds):
            deployed = deploy_op(model=model, model_name=model_name, target=deploy_target)
            deployed.set_caching_options(False)  # served from the cache, a deploy would start no server
    with dsl.Else(name="champion-by-alias"):
        register_op(
            model=model, registered_model_name=registered_model_name, aliases="challenger", tracking_uri=tracking_uri
        ).set_display_name("register-challenger")
        fetched = fetch_op(registered_model_name=registered_model_name, alias=champion_alias, tracking_uri=tracking_uri)
        with _challenger_wins(test_data, model, fetched.outputs["model"], gate_metric, thresholds):
            promoted = register_op(
                model=model,
                registered_model_name=registered_model_name,
                aliases=champion_alias,
                previous_alias=previous_champion_alias,
                tracking_uri=tracking_uri,
            ).set_display_name("promote-challenger")
            deployed = deploy_op(model=model, model_name=model_name, target=deploy_target).after(promoted)
            deployed.set_caching_options(False)


__all__ = ["champion_challenger"]
