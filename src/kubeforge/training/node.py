"""Per-node entry point on clusters that describe themselves in the environment.

    python -m kubeforge.training.node [torchrun arguments...]

Vertex AI gives each replica CLUSTER_SPEC (JSON: worker pools and this replica's place);
this turns it into torchrun's --nnodes/--node-rank/--master-addr/--master-port and then
runs torchrun. Under the Kubeflow operators torchrun reads its PET_* variables itself.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

from kubeforge.errors import InputError


def rendezvous_flags(environ: Mapping[str, str]) -> list[str]:
    """torchrun flags for this node from CLUSTER_SPEC; none when the variable is absent."""
    text = environ.get("CLUSTER_SPEC")
    if not text:
        return []
    try:
        spec = json.loads(text)
        pools = {name: hosts for name, hosts in spec["cluster"].items() if name.startswith("workerpool")}
        task = spec["task"]
        host, port = pools["workerpool0"][0].rsplit(":", 1)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise InputError(f"CLUSTER_SPEC is not a Vertex AI cluster description: {exc}") from exc
    nodes = sum(len(hosts) for hosts in pools.values())
    rank = 0 if task["type"] == "workerpool0" else 1 + int(task["index"])
    return [f"--nnodes={nodes}", f"--node-rank={rank}", f"--master-addr={host}", f"--master-port={port}"]


def main(argv: list[str] | None = None) -> None:
    """Replace this process with torchrun, adding the rendezvous flags for this node."""
    args = sys.argv[1:] if argv is None else argv
    command = [sys.executable, "-m", "torch.distributed.run", *rendezvous_flags(os.environ), *args]
    os.execv(sys.executable, command)


if __name__ == "__main__":
    main()
