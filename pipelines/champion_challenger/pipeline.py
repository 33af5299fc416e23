"""Champion/challenger: train a new model, compare it with the serving one, deploy only if it is better.

Both models are evaluated on the same test rows through their own preprocessors. The
challenger's evaluation gates on the thresholds and on being at least as good as the champion;
the champion's evaluation (with the challenger as its rival) tells whether the champion is at
least as good. Deployment needs the first gate to pass and the second to fail, so a tie keeps
the champion.
"""

from kfp import dsl
from kfp.dsl import Dataset, Model

from kubeforge.components.evaluation.classification import evaluate_op
from kubeforge.components.preprocess.tabular import preprocess_op
from kubeforge.components.serving.deploy import deploy_op
from kubeforge.components.training.pytorch import train_op


@dsl.pipeline(
    name="champion-challenger",
    description="Train a challenger, evaluate it against the current champion model, deploy it only if better.",
)
def champion_challenger(
    data_uri: str,
    champion_model_uri: str,
    label_column: str = "target",
    model_name: str = "tabular-classifier",
    workers: int = 2,
    epochs: int = 30,
    learning_rate: float = 0.001,
    hidden_layers: str = "64,32",
    gate_metric: str = "roc_auc",
    thresholds: str = "{}",
    deploy_target: str = "local",
) -> None:
    """Challenge the Model artifact at `champion_model_uri` with a model trained on `data_uri`."""
    data = dsl.importer(artifact_uri=data_uri, artifact_class=Dataset, reimport=False)
    data.set_display_name("import-data")
    champion = dsl.importer(artifact_uri=champion_model_uri, artifact_class=Model, reimport=False)
    champion.set_display_name("import-champion")
    prepared = preprocess_op(data=data.output, label_column=label_column)
    challenger = train_op(
        train_data=prepared.outputs["train_data"],
        validation_data=prepared.outputs["validation_data"],
        preprocessor=prepared.outputs["preprocessor"],
        workers=workers,
        epochs=epochs,
        learning_rate=learning_rate,
        hidden_layers=hidden_layers,
    )
    challenger_review = evaluate_op(
        test_data=prepared.outputs["test_data"],
        model=challenger.outputs["model"],
        champion_model=champion.output,
        gate_metric=gate_metric,
        thresholds=thresholds,
    )
    champion_review = evaluate_op(
        test_data=prepared.outputs["test_data"],
        model=champion.output,
        champion_model=challenger.outputs["model"],
        gate_metric=gate_metric,
    )
    # Tasks are named evaluate-classifier (the challenger) and evaluate-classifier-2 (the champion).
    # Conditions test each evaluation's single `Output` (kfp.local resolves those, not named outputs).
    with (
        dsl.If(challenger_review.outputs["Output"] == True, name="challenger-not-worse"),  # noqa: E712
        dsl.If(champion_review.outputs["Output"] == False, name="champion-beaten"),  # noqa: E712
    ):
        deployed = deploy_op(model=challenger.outputs["model"], model_name=model_name, target=deploy_target)
        deployed.set_caching_options(False)  # served from the cache, a deploy would start no server


__all__ = ["champion_challenger"]
