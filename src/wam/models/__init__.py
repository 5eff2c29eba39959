"""wam.models."""
