"""Validation components: data checked against a schema, value constraints and a reference dataset."""
