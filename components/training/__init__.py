"""Training components: distributed PyTorch training on a chosen backend."""
