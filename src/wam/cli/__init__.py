"""wam.cli."""
