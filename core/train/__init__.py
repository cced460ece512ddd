"""Training: learning-rate schedules, batch augmentation, the loop and its checkpoints."""
