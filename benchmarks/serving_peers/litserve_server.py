"""The benchmark's LitServe peer: the same model behind LitServe with its own dynamic batching.

LitServe's best practice for small models: `max_batch_size` with a short `batch_timeout`, where
`decode_request` runs per request, `batch` stacks the rows, `predict` runs one forward pass and
`unbatch` hands each request its rows. One worker on the one CPU the harness gives it.
Usage: python litserve_server.py MODEL_DIR NAME PORT
"""

import sys
from pathlib import Path
from typing import Any

import litserve as ls
import numpy as np
from common import TabularPredictor


class TabularAPI(ls.LitAPI):  # type: ignore[misc]
    def __init__(self, directory: Path, name: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.directory = directory
        self.name = name

    def setup(self, device: str) -> None:
        self.predictor = TabularPredictor(self.directory)

    def decode_request(self, request: dict[str, Any]) -> tuple[str, np.ndarray]:
        return str(request.get("id", "")), self.predictor.features(request["inputs"])

    def batch(self, inputs: list[tuple[str, np.ndarray]]) -> tuple[list[str], list[int], np.ndarray]:
        return [i for i, _ in inputs], [len(f) for _, f in inputs], np.concatenate([f for _, f in inputs])

    def predict(self, batch: Any) -> Any:
        if isinstance(batch, tuple) and len(batch) == 3 and isinstance(batch[0], list):
            ids, sizes, features = batch
            return ids, sizes, self.predictor.probabilities(features)
        request_id, features = batch
        return [request_id], [len(features)], self.predictor.probabilities(features)

    def unbatch(self, output: Any) -> list[tuple[str, np.ndarray]]:
        ids, sizes, probabilities = output
        bounds = np.cumsum([0, *sizes])
        return [(i, probabilities[a:b]) for i, a, b in zip(ids, bounds[:-1], bounds[1:], strict=True)]

    def encode_response(self, output: Any) -> dict[str, Any]:
        if isinstance(output, tuple) and len(output) == 3:  # unbatched path (a batch of one)
            output = self.unbatch(output)[0]
        request_id, probabilities = output
        return self.predictor.response(self.name, request_id, probabilities)


if __name__ == "__main__":
    directory, name, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    api = TabularAPI(directory, name, max_batch_size=64, batch_timeout=0.001, api_path=f"/v2/models/{name}/infer")
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, healthcheck_path="/v2/health/ready")
    server.run(port=port, host="127.0.0.1", log_level="warning", generate_client_file=False)
