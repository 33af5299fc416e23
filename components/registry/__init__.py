"""Model registry components: register a Model artifact as a version and move its aliases (MLflow)."""
