"""Entry point of one training process: `python -m kubeforge.training.worker CONFIG.json`.

Runs unchanged under torchrun, a PyTorchJob, SLURM's srun or a plain single process: the
rank and rendezvous come from the environment. An error the user can fix is written to
`error.json` in the run directory so the launcher can report it instead of a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from kubeforge.errors import KubeforgeError
from kubeforge.training.config import TrainConfig
from kubeforge.training.distributed import init_distributed, shutdown_distributed
from kubeforge.training.engine import train

ERROR_FILE = "error.json"


@record
def main(argv: list[str] | None = None) -> int:
    """Run one worker of the job described by the configuration file in argv[0]."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m kubeforge.training.worker CONFIG.json", file=sys.stderr)
        return 2
    config = TrainConfig.load(Path(args[0]))
    context = init_distributed(config.process_group_timeout_s)
    try:
        train(config, context)
    except KubeforgeError as exc:
        error = {"type": type(exc).__name__, "message": str(exc), "rank": context.rank}
        (Path(config.run_dir) / ERROR_FILE).write_text(json.dumps(error))
        print(f"rank {context.rank}: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        shutdown_distributed(context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
