"""The benchmark's KServe peer: KServe's Python ModelServer serving the same TorchScript model.

Runs in its own virtualenv (kserve needs pandas<3), serving REST and gRPC. Preprocessing uses
kubeforge's own fitted preprocessor (the same numpy fast path kubeforge uses), then one forward
pass per request.
Usage: python kserve_server.py MODEL_DIR NAME HTTP_PORT GRPC_PORT
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import kserve
import numpy as np
import torch
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse

from kubeforge.preprocessor import FittedPreprocessor


class TabularModel(kserve.Model):  # type: ignore[misc]
    def __init__(self, name: str, directory: Path):
        super().__init__(name)
        self.directory = directory
        self.load()

    def load(self) -> bool:
        self.module = torch.jit.load(str(self.directory / "model.pt"), map_location="cpu")
        self.preprocessor = FittedPreprocessor.load(self.directory / "preprocessor.json")
        self.classes = self.preprocessor.classes or []
        self.ready = True
        return True

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        columns: dict[str, Any] = {}
        for tensor in payload.inputs:  # JSON data on REST, raw_input_contents on gRPC
            values = tensor.as_numpy().reshape(-1)
            if tensor.datatype == "BYTES":
                values = np.asarray([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
            columns[tensor.name] = values
        features = self.preprocessor.transform_columns(columns, source="inputs")
        with torch.inference_mode():
            logits = self.module(torch.from_numpy(features)).numpy()
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
        labels = [str(self.classes[i]) for i in probabilities.argmax(axis=1)]
        rows = len(labels)
        outputs = [
            InferOutput(name="predictions", shape=[rows], datatype="BYTES", data=labels),
            InferOutput(
                name="probabilities",
                shape=list(probabilities.shape),
                datatype="FP32",
                data=probabilities.ravel().tolist(),
            ),
        ]
        return InferResponse(response_id=payload.id or "", model_name=self.name, infer_outputs=outputs)


if __name__ == "__main__":
    directory, name, port, grpc_port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    sys.argv = sys.argv[:1]
    server = kserve.ModelServer(
        http_port=port, grpc_port=grpc_port, workers=1, enable_grpc=True, enable_latency_logging=False
    )
    server.start([TabularModel(name, directory)])
