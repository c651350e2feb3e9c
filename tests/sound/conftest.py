"""Fixtures for the sound tests: a real scsynth on JACK's dummy driver (`vtkernel.testing.scsynth`).

The server is started once per module (about 1.3 s) and must answer `/status`
before any test uses it. Where jackd or scsynth is not installed, the tests
that need it are skipped with the line that says how to install them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from vtkernel.testing.scsynth import ScsynthServer, unavailable


@pytest.fixture(scope="module")
def server() -> Iterator[ScsynthServer]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    with ScsynthServer() as srv:
        yield srv
