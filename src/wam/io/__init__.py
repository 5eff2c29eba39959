"""wam.io."""
