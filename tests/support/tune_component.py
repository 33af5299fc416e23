"""Run the tuning component's core in its own process, as a KFP task pod would, so a test can kill it.

    python tune_component.py '{"inputs": [train, validation, preprocessor], "best_model": ..., "params": {...}}'

Publishes the best model and the report (`<best_model>-report`) when the study ends.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from kubeforge.components.tuning.optuna import core, report
from kubeforge.components.tuning.optuna.study import TuneParams


def start_tuning(arguments: dict[str, Any], log: Path) -> subprocess.Popen[bytes]:
    """Start the task process, its output going to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, __file__, json.dumps(arguments)], stdout=output, stderr=subprocess.STDOUT
        )


def main(argv: list[str]) -> None:
    """Tune as the component does, from the JSON on the command line."""
    arguments = json.loads(argv[0])
    best_model = arguments["best_model"]
    result = core.run_study(
        core.TuneInputs(*arguments["inputs"]), core.study_dir_for(best_model), TuneParams(**arguments["params"])
    )
    core.publish_best(result, best_model)
    report.write_report(result.study, arguments["params"].get("metric", "val_loss"), f"{best_model}-report")


if __name__ == "__main__":
    main(sys.argv[1:])
