"""Training: the loop with checkpoints and early stopping, the fast BBB step and its launch."""
