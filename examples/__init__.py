"""Runnable examples of the library API (python -m examples.<name>)."""
