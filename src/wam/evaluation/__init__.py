"""wam.evaluation."""
