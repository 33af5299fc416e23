"""Regenerate kubeforge.serving.oip's protobuf module from the Open Inference Protocol's published .proto.

Runs grpcio-tools' protoc (`pip install grpcio-tools`, in the dev extras) on
src/kubeforge/serving/oip/grpc_predict_v2.proto and writes grpc_predict_v2_pb2.py and .pyi beside it.
The module registers its messages in a descriptor pool of its own instead of protobuf's default
pool: the reference clients (tritonclient, KServe) define the same `inference.*` messages, and
one process may hold both. Only messages are generated; the server registers the service's
methods itself (kubeforge/serving/grpc_server.py). `--check` fails when the checked-in files differ.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path("kubeforge/serving/oip")
PROTO = PACKAGE / "grpc_predict_v2.proto"
OUTPUTS = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi")
DEFAULT_POOL = "DESCRIPTOR = _descriptor_pool.Default()."
OWN_POOL = (
    "# a descriptor pool of its own: the reference clients define the same inference.* messages\n"
    "DESCRIPTOR = _descriptor_pool.DescriptorPool()."
)


def generate(into: Path) -> dict[str, str]:
    """Run protoc into `into` and return each output's text, the pool rewritten."""
    from grpc_tools import protoc

    source = ROOT / "src"
    code = protoc.main(["protoc", f"-I{source}", f"--python_out={into}", f"--pyi_out={into}", str(source / PROTO)])
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    texts = {name: (into / PACKAGE / name).read_text() for name in OUTPUTS}
    if texts[OUTPUTS[0]].count(DEFAULT_POOL) != 1:
        raise SystemExit(f"{OUTPUTS[0]}: expected one {DEFAULT_POOL} to replace; protoc's output changed")
    texts[OUTPUTS[0]] = texts[OUTPUTS[0]].replace(DEFAULT_POOL, OWN_POOL)
    return texts


def main(argv: list[str]) -> int:
    """Write the generated files, or with --check compare them with the checked-in ones."""
    with tempfile.TemporaryDirectory() as scratch:
        texts = generate(Path(scratch))
    target = ROOT / "src" / PACKAGE
    if "--check" in argv:
        stale = [name for name, text in texts.items() if (target / name).read_text() != text]
        if stale:
            print(f"stale: {', '.join(stale)}; run python scripts/generate_oip_grpc.py", file=sys.stderr)
            return 1
        return 0
    for name, text in texts.items():
        (target / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
