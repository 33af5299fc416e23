"""Run the training component's core in its own process, as a KFP task pod would, so a test can kill it.

    python train_component.py '{"inputs": [train, validation, preprocessor], "model_dir": ...,
                                "params": {...}, "handle_path": ..., "staging_uri": ...}'

Prints the run summary as one JSON line when training ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubeforge.components.training.pytorch.core import TrainInputs, TrainParams, train_model


def task_arguments(
    inputs: TrainInputs, model_dir: Path, params: TrainParams, handle_path: Path, staging_uri: str = ""
) -> dict[str, Any]:
    """The JSON this script takes, for the same call a test makes in-process."""
    return {
        "inputs": [inputs.train_data, inputs.validation_data, inputs.preprocessor],
        "model_dir": str(model_dir),
        "params": params.__dict__,
        "handle_path": str(handle_path),
        "staging_uri": staging_uri,
    }


def start_task(arguments: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    """Start the task process, its output going to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, __file__, json.dumps(arguments)], stdout=output, stderr=subprocess.STDOUT
        )


def main(argv: list[str]) -> None:
    """Train as the component does, from the JSON on the command line."""
    arguments = json.loads(argv[0])
    result = train_model(
        TrainInputs(*arguments["inputs"]),
        arguments["model_dir"],
        TrainParams(**arguments["params"]),
        handle_path=arguments["handle_path"],
        staging_uri=arguments["staging_uri"],
    )
    print(json.dumps(result.summary))


if __name__ == "__main__":
    main(sys.argv[1:])
