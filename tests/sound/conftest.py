"""Fixtures for the sound tests: a real scsynth on JACK's dummy driver (`vtkernel.testing.scsynth`).

The server is started once for all the sound tests (about 1.3 s) and must answer `/status`
before any test uses it. Where jackd or scsynth is not installed, the tests
that need it are skipped with the line that says how to install them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Kernel, start_kernel, stop_kernel
from vtkernel.testing.scsynth import ScsynthServer, unavailable


@pytest.fixture(scope="session")
def server() -> Iterator[ScsynthServer]:
    why = unavailable()
    if why is not None:
        pytest.skip(why)
    with ScsynthServer() as srv:
        yield srv


@pytest.fixture(scope="session")
def k(jupyter_path: str) -> Iterator[Kernel]:
    """One kernel for the sound tests (each test cleans up what would disturb the next)."""
    kernel = start_kernel()
    try:
        yield kernel
    finally:
        stop_kernel(kernel)
