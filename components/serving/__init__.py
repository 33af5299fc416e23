"""Serving components: deploying a Model artifact to a serving target."""
