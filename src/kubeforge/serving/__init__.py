"""The model server (Open Inference Protocol v2, Vertex AI and SageMaker contracts), batching, local servers, client."""
