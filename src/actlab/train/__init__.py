"""Training: engine, optimizers, schedules and metrics."""
