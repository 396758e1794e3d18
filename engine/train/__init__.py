"""Training: configuration, the loop, its log and its state (resumable)."""
