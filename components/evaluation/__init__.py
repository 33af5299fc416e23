"""Evaluation components: classification metrics with a gate, picking the best of several models, explanations."""
