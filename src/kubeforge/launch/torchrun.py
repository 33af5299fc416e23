"""The one torchrun command of every launch: the node supervisor around torchrun around the worker."""

from __future__ import annotations

NODE_MODULE = "kubeforge.launch.node"
WORKER_MODULE = "kubeforge.training.worker"
STANDALONE = ("--standalone", "--nnodes=1")
"""Rendezvous flags for one node: a private rendezvous, so concurrent jobs never share a port."""


def torchrun_command(
    config_args: list[str],
    nproc_per_node: int,
    max_restarts: int = 0,
    rendezvous: tuple[str, ...] | list[str] = (),
    python: str = "python",
) -> list[str]:
    """`python -m kubeforge.launch.node [rendezvous] torchrun-flags -m kubeforge.training.worker CONFIG`.

    `config_args` is a path/URI (`[path]`) or `["--config-json", JSON]`; `rendezvous` holds the
    backend's flags (none where the platform sets PET_* or CLUSTER_SPEC, STANDALONE on one node).
    """
    return [
        python,
        "-m",
        NODE_MODULE,
        *rendezvous,
        f"--nproc-per-node={nproc_per_node}",
        f"--max-restarts={max_restarts}",
        "--monitor-interval=0.5",
        "-m",
        WORKER_MODULE,
        *config_args,
    ]


__all__ = ["NODE_MODULE", "STANDALONE", "WORKER_MODULE", "torchrun_command"]
