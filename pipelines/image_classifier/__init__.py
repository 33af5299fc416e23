"""image_classifier: the tabular components with a small CNN on images given as pixel columns."""
