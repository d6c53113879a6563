"""Training: truncated BPTT, the Trainer, checkpoints and DDP."""
