"""kubeforge package."""
