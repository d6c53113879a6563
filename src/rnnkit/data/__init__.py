"""Data: synthetic memory tasks, time-series windows, text vocabularies, readers and batching."""
