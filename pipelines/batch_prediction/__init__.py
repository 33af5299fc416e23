"""batch_prediction: a table scored with an existing Model artifact."""
