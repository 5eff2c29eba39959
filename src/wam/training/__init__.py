"""wam.training."""
