"""Utilities for developers of the package."""
