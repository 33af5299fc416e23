"""Preprocessing components: tabular split, schema check and a fitted preprocessor."""
