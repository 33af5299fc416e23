"""Evaluation components: classification metrics with a deployment gate, and picking the best of several models."""
