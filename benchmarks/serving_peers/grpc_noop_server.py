"""The ceiling of a Python gRPC server: grpcio's asyncio server answering ModelInfer with nothing done.

The settings kubeforge's gRPC service had while it ran on grpcio (it now runs on kubeforge's own
HTTP/2 transport); the handler neither parses the request nor runs a model: it returns one
pre-serialized ModelInferResponse (a prediction and its probabilities, as raw output contents).
What a gRPC server built on grpcio can answer on one core at best (KServe's gRPC server is one);
every real server's own work comes on top of it.
Usage: python grpc_noop_server.py GRPC_PORT
"""

from __future__ import annotations

import asyncio
import struct
import sys
from typing import Any

import grpc
import numpy as np
from grpc import aio

from kubeforge.serving.oip import grpc_predict_v2_pb2 as pb

SERVICE = "inference.GRPCInferenceService"


def fixed_answer() -> bytes:
    response = pb.ModelInferResponse(model_name="cancer", model_version="1", id="0")
    response.outputs.add(name="predictions", datatype="BYTES", shape=[1])
    response.outputs.add(name="probabilities", datatype="FP32", shape=[1, 2])
    response.raw_output_contents.append(struct.pack("<I", 6) + b"benign")
    response.raw_output_contents.append(np.array([0.1, 0.9], dtype="<f4").tobytes())
    return response.SerializeToString()


async def serve(port: int) -> None:
    answer = fixed_answer()

    async def model_infer(request: bytes, context: Any) -> bytes:
        return answer

    handlers = {"ModelInfer": grpc.unary_unary_rpc_method_handler(model_infer)}  # bytes in, bytes out
    server = aio.server(options=[("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)])
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_registered_method_handlers(SERVICE, handlers)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
