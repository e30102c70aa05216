"""Factories per domain: build valid objects and authenticated callers for tests."""
