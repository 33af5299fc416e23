"""Inference components: batch scoring of a table with a Model artifact."""
