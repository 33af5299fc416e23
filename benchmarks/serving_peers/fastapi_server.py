"""The benchmark's FastAPI baseline: a minimal endpoint calling the model once per request.

Runs in its own virtualenv with fastapi and uvicorn. Speaks the same v2 infer request and
preprocesses with kubeforge's own fitted preprocessor (numpy fast path), like kubeforge does.
Usage: python fastapi_server.py MODEL_DIR NAME PORT
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import uvicorn
from fastapi import FastAPI, Request

from kubeforge.preprocessor import FittedPreprocessor

directory, name, port = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
module = torch.jit.load(str(directory / "model.pt"), map_location="cpu")
preprocessor = FittedPreprocessor.load(directory / "preprocessor.json")
classes = preprocessor.classes or []
app = FastAPI()


@app.get("/v2/health/ready")
def ready() -> dict[str, bool]:
    return {"ready": True}


@app.post(f"/v2/models/{name}/infer")
async def infer(request: Request) -> dict[str, Any]:
    payload = await request.json()
    columns = {
        t["name"]: np.asarray(t["data"], dtype=object if t["datatype"] == "BYTES" else np.float64)
        for t in payload["inputs"]
    }
    features = preprocessor.transform_columns(columns, source="inputs")
    with torch.inference_mode():
        logits = module(torch.from_numpy(features)).numpy()
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
    labels = [str(classes[i]) for i in probabilities.argmax(axis=1)]
    return {
        "model_name": name,
        "id": payload.get("id", ""),
        "outputs": [
            {"name": "predictions", "datatype": "BYTES", "shape": [len(labels)], "data": labels},
            {
                "name": "probabilities",
                "datatype": "FP32",
                "shape": list(probabilities.shape),
                "data": probabilities.ravel().tolist(),
            },
        ],
    }


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
