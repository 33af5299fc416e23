"""KFP definition of `registry/mlflow_fetch`: declares inputs and outputs, calls the core."""

from kfp import dsl
from kfp.dsl import Model, Output

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def fetch_model_mlflow(
    model: Output[Model],
    registered_model_name: str,
    alias: str = "champion",
    tracking_uri: str = "",
) -> str:
    """Download the version of `registered_model_name` that `alias` points at into `model`.

    `tracking_uri` '' reads $MLFLOW_TRACKING_URI. The output's metadata names the version, so an
    evaluation or a deployment says which registered model it used. Returns the version.
    """
    from kubeforge.components.registry.mlflow_fetch import core

    fetched = core.fetch_model(tracking_uri, registered_model_name, alias, model.path)
    model.metadata.update(registered_model_name=fetched.name, alias=fetched.alias, version=fetched.version)
    return str(fetched.version)
