"""Fixtures for timing tests: a real engine, a real scheduler process, a real UDP receiver."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from vtkernel.engine import Engine
from vtkernel.engine.document import Change
from vtkernel.engine.timing.clock import NTP_UNITS
from vtkernel.protocol import parse_command
from vtkernel.runtime import Runtime
from vtkernel.testing.osc import OscReceiver, Received

LOOKAHEAD = 0.05


class Rig:
    """An engine, its runtime (scheduler process) and an OSC receiver."""

    def __init__(self, engine: Engine, runtime: Runtime, rx: OscReceiver) -> None:
        self.engine = engine
        self.runtime = runtime
        self.rx = rx

    def do(self, *commands: dict[str, Any]) -> int:
        for data in commands:
            outcome = self.engine.call(parse_command(data))
            assert outcome.error is None, outcome.error
        assert self.runtime.wait_synced()
        return self.engine.version

    def play_seq(self, steps: list[Any], *, division: int = 4, bpm: float = 240.0, port: int | None = None) -> None:
        self.do(
            {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": steps, "division": division}},
            {"op": "add_module", "name": "o", "type": "osc_out", "params": {"port": port or self.rx.port}},
            {"op": "connect", "src": "s.out", "dst": "o.in"},
            {"op": "set_bpm", "bpm": bpm},
            {"op": "play"},
        )


@pytest.fixture
def rig() -> Iterator[Rig]:
    engine = Engine().start()
    rx = OscReceiver().start()
    runtime = Runtime(engine, lookahead=LOOKAHEAD).start()
    try:
        yield Rig(engine, runtime, rx)
    finally:
        runtime.stop()
        rx.stop()
        engine.stop()


@dataclass(frozen=True, slots=True)
class QuantizedChange(Change):
    quantize: tuple[tuple[tuple[str, ...], str], ...] = ()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grid_errors_us(received: list[Received], period: float) -> tuple[list[float], list[int]]:
    """Each timetag's distance (us) from the grid `tag0 + k * period`, and the k of each."""
    tag0 = received[0].timetag
    assert tag0 is not None
    unit = period * NTP_UNITS
    errors, ks = [], []
    for r in received:
        assert r.timetag is not None
        k = round((r.timetag - tag0) / unit)
        ks.append(k)
        errors.append(abs(r.timetag - tag0 - k * unit) / NTP_UNITS * 1e6)
    return errors, ks


def fraction_ahead(received: list[Received], expected: int) -> float:
    """Events that arrived before their timetag, over the events that should have arrived."""
    return sum(1 for r in received if (r.ahead or 0) > 0) / expected


class GilWatch:
    """A thread that notes the longest gap between its 1 ms heartbeats (proves the GIL was held)."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.perf_counter()
        while not self._stop.wait(0.001):
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    def __enter__(self) -> GilWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
