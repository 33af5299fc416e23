"""tabular_regressor: validate, preprocess, train a regressor, evaluate against a gate, deploy."""
