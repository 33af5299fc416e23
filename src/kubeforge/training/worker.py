"""Entry point of one training process.

    python -m kubeforge.training.worker CONFIG          # a path or an s3:// / gs:// URI
    python -m kubeforge.training.worker --config-json '{...}'

Runs unchanged under torchrun, a PyTorchJob, a TrainJob, Vertex AI or SLURM's srun: the rank
and rendezvous come from the environment. An error the user can fix is written to
`error.json` in the run directory so a launcher can report it instead of a traceback.
SIGTERM stops the worker after its current step and a checkpoint, with PREEMPTED_EXIT_CODE.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record

from kubeforge.artifacts import read_text
from kubeforge.errors import KubeforgeError
from kubeforge.training.config import TrainConfig
from kubeforge.training.distributed import init_distributed, shutdown_distributed
from kubeforge.training.engine import train
from kubeforge.training.preemption import PREEMPTED_EXIT_CODE, Preempted, StopRequest, report_preempted

ERROR_FILE = "error.json"
USAGE = "usage: python -m kubeforge.training.worker CONFIG | --config-json JSON"


def read_config(args: list[str]) -> TrainConfig:
    """The configuration named by the command line: a path/URI, or inline JSON."""
    if len(args) == 2 and args[0] == "--config-json":
        return TrainConfig.from_json(args[1])
    if len(args) == 1 and not args[0].startswith("-"):
        return TrainConfig.from_json(read_text(args[0]))
    raise SystemExit(USAGE)


@record
def main(argv: list[str] | None = None) -> int:
    """Run one worker of the job described by the configuration."""
    config = read_config(sys.argv[1:] if argv is None else argv)
    stop = StopRequest().install()
    context = init_distributed(config.process_group_timeout_s)
    try:
        train(config, context, stop)
    except Preempted as exc:
        report_preempted(str(exc))
        print(f"rank {context.rank}: {exc}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except KubeforgeError as exc:
        Path(config.run_dir).mkdir(parents=True, exist_ok=True)
        error = {"type": type(exc).__name__, "message": str(exc), "rank": context.rank}
        (Path(config.run_dir) / ERROR_FILE).write_text(json.dumps(error))
        print(f"rank {context.rank}: {exc}", file=sys.stderr)
        return exc.exit_code
    finally:
        shutdown_distributed(context)
    return 0


if __name__ == "__main__":
    sys.exit(main())
