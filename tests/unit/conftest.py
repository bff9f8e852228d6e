"""Fixtures of the unit tests that several files use."""

from tests.unit.mirror import server  # noqa: F401 (a fixture: an HTTP mirror on 127.0.0.1)
