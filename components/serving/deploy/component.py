"""KFP definition of `serving/deploy`: declares inputs and outputs, calls the core."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Input, Model

from kubeforge import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def deploy_model(
    model: Input[Model],
    model_name: str,
    target: str = "local",
    port: int = 0,
) -> NamedTuple("Outputs", [("endpoint", str), ("status", str)]):  # type: ignore[valid-type]
    """Serve the model (Open Inference Protocol v2) on the chosen target; outputs the endpoint URL."""
    from collections import namedtuple

    from kubeforge.components.serving.deploy import core

    result = core.deploy(model.path, target=target, model_name=model_name, port=port)
    outputs = namedtuple("outputs", ["endpoint", "status"])
    return outputs(result.endpoint, result.status)
