"""The benchmark's BentoML peer: the same model behind a BentoML service with adaptive batching.

BentoML's best practice: the network in its own service whose `@bentoml.api(batchable=True)` method
batches adaptively (up to `max_batch_size` rows within `max_latency_ms`), called through
`bentoml.depends` by the request-facing service that parses the v2 request and preprocesses it.
Started with `bentoml serve` by the harness (environment: KUBEFORGE_BENCH_MODEL_DIR, KUBEFORGE_BENCH_MODEL_NAME).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
from common import TabularPredictor

DIRECTORY = Path(os.environ["KUBEFORGE_BENCH_MODEL_DIR"])
NAME = os.environ["KUBEFORGE_BENCH_MODEL_NAME"]


@bentoml.service(workers=1)
class TabularModel:
    """The network alone: BentoML batches calls to `probabilities` across requests."""

    def __init__(self) -> None:
        self.predictor = TabularPredictor(DIRECTORY)

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=10)
    def probabilities(self, features: np.ndarray) -> np.ndarray:
        return self.predictor.probabilities(features)


@bentoml.service(workers=1)
class Tabular:
    """The request-facing service: parses and preprocesses the v2 request, then calls the batched model."""

    model = bentoml.depends(TabularModel)

    def __init__(self) -> None:
        self.predictor = TabularPredictor(DIRECTORY)

    @bentoml.api(route=f"/v2/models/{NAME}/infer")
    async def infer(self, inputs: list[dict[str, Any]], id: str = "") -> dict[str, Any]:
        features = self.predictor.features(inputs)
        probabilities = await self.model.to_async.probabilities(features)
        return self.predictor.response(NAME, id, np.asarray(probabilities))
