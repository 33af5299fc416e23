"""KFP definition of `registry/mlflow`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Input, Model

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register_model_mlflow(
    model: Input[Model],
    registered_model_name: str,
    aliases: str = "challenger",
    tracking_uri: str = "",
    previous_alias: str = "",
) -> str:
    """Register `model` as a new version of `registered_model_name` and point `aliases` (comma-separated) at it.

    The version is registered from the MLflow run that tracked the model's training (else the model is
    logged as a run first); a re-run finds the version it registered. `tracking_uri` '' reads
    $MLFLOW_TRACKING_URI. Moving `champion` onto a version promotes it; with `previous_alias` (e.g.
    previous_champion) the version that held the first alias keeps that one. Returns the version.
    """
    from kubeforge.components.registry.mlflow import core

    registration = core.register_model(
        tracking_uri, model.path, model.uri, registered_model_name, aliases=aliases, previous_alias=previous_alias
    )
    return str(registration.version)
