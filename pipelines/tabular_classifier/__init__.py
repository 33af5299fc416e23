"""tabular_classifier: preprocess, train an MLP with DDP, evaluate against a gate, deploy."""
