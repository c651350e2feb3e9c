"""Timing through a real kernel: OSC bundles to a UDP receiver in this process (SPEC §8)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.conftest import Kernel
from vtkernel.testing.osc import OscReceiver


@pytest.fixture
def receiver() -> Iterator[OscReceiver]:
    with OscReceiver() as r:
        yield r


def play_pattern(kernel: Kernel, port: int, bpm: int = 240) -> None:
    # The scheduler process starts in the background after the kernel is ready.
    kernel.ok("import time\nk = get_ipython().kernel\nwhile not k.runtime.alive:\n    time.sleep(0.01)")
    kernel.ok(
        f"vt.bpm({bpm})\n"
        "vt.module('s', 'seq', steps=[60, 62, None, 64], division=4)\n"
        f"vt.module('o', 'osc_out', port={port}, address='/note')\n"
        "vt.connect('s.out', 'o.in')\n"
        "vt.play()"
    )


def grid_errors(received: list, step_seconds: float) -> list[float]:
    walls = sorted(r.wall for r in received)
    first = walls[0]
    return [abs((w - first) / step_seconds - round((w - first) / step_seconds)) * step_seconds for w in walls]


def test_bundles_land_on_the_exact_beat_grid_ahead_of_their_timetags(kernel: Kernel, receiver: OscReceiver) -> None:
    play_pattern(kernel, receiver.port)
    got = receiver.wait_for(60, timeout=15)
    assert len(got) >= 60
    assert all(r.address == "/note" and r.timetag is not None for r in got)
    step = 60 / 240 / 4
    assert max(grid_errors(got, step)) < 1e-6
    ahead = [r.ahead for r in got]
    assert sum(a > 0 for a in ahead) / len(ahead) >= 0.99


@pytest.mark.parametrize(
    "busy",
    [
        "import time\nt = time.time()\nwhile time.time() - t < 3:\n    sum(range(300))",
        "x = sum(range(10**8))",  # one C call holding the GIL for a second or more
    ],
    ids=["python-loop", "gil-holding-c-call"],
)
def test_a_busy_cell_does_not_make_events_late(kernel: Kernel, receiver: OscReceiver, busy: str) -> None:
    play_pattern(kernel, receiver.port)
    receiver.wait_for(8, timeout=10)
    receiver.clear()
    kernel.ok(busy, timeout=120)
    got = list(receiver.received)
    assert len(got) >= 6  # 16 events per second at 240 bpm
    ahead = [r.ahead for r in got]
    assert sum(a > 0 for a in ahead) / len(ahead) >= 0.95


def test_stop_stops_events_within_the_lookahead(kernel: Kernel, receiver: OscReceiver) -> None:
    play_pattern(kernel, receiver.port)
    receiver.wait_for(8, timeout=10)
    kernel.ok("vt.stop()")
    stopped_at = time.time()
    time.sleep(0.5)
    late = [r for r in receiver.received if r.arrival > stopped_at + 0.1]
    assert late == []


def test_stats_and_telemetry_report_the_clock(kernel: Kernel, receiver: OscReceiver) -> None:
    play_pattern(kernel, receiver.port)
    receiver.wait_for(8, timeout=10)
    stats = kernel.ok("%vt stats")
    lines = stats.splitlines()
    assert "clock" in lines and "events_sent" in stats and "tick_lateness_ms.p99" in stats  # sections, aligned figures
    c = kernel.client(telemetry=True)
    assert c.wait_for(lambda: len(c.of_type("telemetry")) >= 10, 5)
    tel = c.of_type("telemetry")
    assert tel[-1]["playing"] is True and tel[-1]["beat"] > 0
    times = [t for t, m in zip(c.times, c.messages, strict=True) if m["type"] == "telemetry"]
    rate = (len(times) - 1) / (times[-1] - times[0])
    assert rate <= 33
    c.close()


def test_the_snapshot_displays_as_a_patch_graph(kernel: Kernel) -> None:
    kernel.ok("vt.module('a', 'lfo'); vt.module('b', 'lfo'); vt.connect('a.out', 'b.rate')")
    result = kernel.execute("vt.snapshot()")
    svg = result["outputs"][0]["image/svg+xml"]
    labels = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert {"a", "b", "lfo", "out"} <= set(labels)
    assert "<path" in svg  # the connection is drawn
