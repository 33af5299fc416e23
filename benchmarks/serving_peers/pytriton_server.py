"""The benchmark's Triton peer: the same model served by Triton Inference Server through PyTriton.

PyTriton's wheel ships the Triton server binary; the Python function below is bound as a model
with Triton's dynamic batcher (up to 64 rows, 1 ms queue delay), Triton's own best practice.
Each feature column is one input of shape [1] per row, so requests send shape [N, 1].
Usage: python pytriton_server.py MODEL_DIR NAME HTTP_PORT GRPC_PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from common import TabularPredictor
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig

from kubeforge.preprocessor import CategoricalFeature

directory, name, http_port, grpc_port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
predictor = TabularPredictor(directory)
features = predictor.preprocessor.features


@batch
def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
    columns = {}
    for feature in features:
        values = inputs[feature.name].reshape(-1)
        if isinstance(feature, CategoricalFeature):
            values = np.asarray([v.decode() for v in values], dtype=object)
        columns[feature.name] = values
    probabilities = predictor.probabilities(predictor.preprocessor.transform_columns(columns, source="inputs"))
    labels = np.asarray([[str(predictor.classes[i]).encode()] for i in probabilities.argmax(axis=1)], dtype=np.bytes_)
    return {"predictions": labels, "probabilities": probabilities}


if __name__ == "__main__":
    config = TritonConfig(http_port=http_port, grpc_port=grpc_port, metrics_port=http_port + 100, log_verbose=0)
    with Triton(config=config) as triton:
        triton.bind(
            model_name=name,
            infer_func=infer,
            inputs=[
                Tensor(name=f.name, dtype=np.bytes_ if isinstance(f, CategoricalFeature) else np.float64, shape=(1,))
                for f in features
            ],
            outputs=[
                Tensor(name="predictions", dtype=np.bytes_, shape=(1,)),
                Tensor(name="probabilities", dtype=np.float32, shape=(-1,)),
            ],
            config=ModelConfig(max_batch_size=64, batcher=DynamicBatcher(max_queue_delay_microseconds=1000)),
            strict=False,
        )
        triton.serve()
