"""The Open Inference Protocol v2 gRPC messages, generated from KServe's published grpc_predict_v2.proto.

grpc_predict_v2.proto is the protocol's own file, unchanged; grpc_predict_v2_pb2.py/.pyi are
generated from it with grpcio-tools by scripts/generate_oip_grpc.py (do not edit them by hand).
"""
