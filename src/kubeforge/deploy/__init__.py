"""Deploy targets for a trained model: local, KServe, Vertex AI and SageMaker, behind one interface."""
