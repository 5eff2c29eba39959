"""wam.data."""
