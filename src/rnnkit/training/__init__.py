"""Training: truncated BPTT, the Trainer (its data, progress and log), checkpoints, the run-directory lock, DDP."""
