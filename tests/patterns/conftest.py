"""Fixtures of the pattern tests: `strudel`, the Strudel 1.1 reference process (see strudel.py)."""

from tests.patterns.strudel import strudel

__all__ = ["strudel"]
