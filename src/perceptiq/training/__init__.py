"""Training of quality models: loops, checkpoints, calibration and reinforcement learning to rank (``rl``)."""
