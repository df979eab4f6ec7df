"""Small shared utilities (parameter paths, JSON I/O)."""
