"""Distributed PyTorch training: the engine, its worker, models, checkpoints and the launch backends."""
