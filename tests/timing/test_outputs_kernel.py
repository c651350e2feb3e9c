"""Through a real kernel: `vt.superdirt()` and a pattern module send `/dirt/play` to a UDP receiver.

The receiver is in this process (python-osc's parser, kernel receive
timestamps). The expected events come from the pattern core's haps: a
`@bar`-quantized edit must land on the first bar boundary after the edit,
with every timetag still on the exact grid of the first one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import pytest

from tests.conftest import Kernel
from vtkernel.engine.patterns.mini import mini
from vtkernel.engine.timing.clock import NTP_UNITS
from vtkernel.testing.osc import OscReceiver, Received

BPM = 240.0
METER = 4
CYCLE_SECONDS = METER * 60 / BPM  # one cycle is one bar: 1 s


@pytest.fixture
def rx() -> Iterator[OscReceiver]:
    with OscReceiver() as r:
        yield r


def fields(r: Received) -> dict[str, Any]:
    assert r.address == "/dirt/play"
    return dict(zip(r.args[0::2], r.args[1::2], strict=True))


def wait_until(rx: OscReceiver, predicate: Any, timeout: float = 15.0) -> list[Received]:
    """What arrived, in timetag order, once `predicate` holds for it (the receiver wakes us per datagram)."""

    def by_time(got: list[Received]) -> list[Received]:
        return sorted(got, key=lambda r: r.timetag or 0)

    got = by_time(rx.wait_until(lambda got: predicate(by_time(got)), timeout))
    if not predicate(got):
        raise AssertionError(f"not received in {timeout} s: {[fields(r).get('s') for r in got]}")
    return got


def onsets(text: str, c0: int, c1: int) -> list[tuple[Fraction, Any, Fraction]]:
    """(cycle, value, whole duration in cycles) of each hap onset of `text` in [c0, c1), from the core."""
    return sorted(
        (h.whole.begin, h.value, h.whole.end - h.whole.begin)
        for h in mini(text).query(c0, c1)
        if h.whole is not None and h.has_onset()
    )


def test_superdirt_plays_a_pattern_and_a_bar_quantized_edit_lands_on_the_cycle_boundary(kernel: Kernel, rx: OscReceiver):
    kernel.ok("import time\nk = get_ipython().kernel\nwhile not k.runtime.alive:\n    time.sleep(0.01)")
    kernel.ok(
        f"vt.bpm({BPM})\n"
        "vt.module('drums', 'pattern', pattern='bd*2 [~ sd:1]')\n"
        f"vt.superdirt(port={rx.port})\n"
        "vt.play()"
    )
    got = wait_until(rx, lambda g: len(g) >= 6)  # two cycles: bd bd sd, bd bd sd
    tag0 = got[0].timetag
    assert tag0 is not None
    first = fields(got[0])
    assert first["cycle"] == 0.0 and first["s"] == "bd"

    before = time.time()
    kernel.ok("vt.set('drums.pattern', 'hh*4', quantize='bar')")
    edited_at = time.time()
    got = wait_until(rx, lambda g: sum(fields(r)["s"] == "hh" for r in g) >= 8)

    # Every timetag sits exactly on the grid of the first: tag0 + cycle * 1 s, to one 2**-32 s unit.
    for r in got:
        f = fields(r)
        cycle = Fraction(f["cycle"]).limit_denominator(64)
        assert r.timetag is not None
        assert abs(r.timetag - tag0 - round(cycle * CYCLE_SECONDS * NTP_UNITS)) <= 1
        assert f["cps"] == pytest.approx(BPM / 60 / METER)
        assert f["orbit"] == 0 and f["_id_"] == "drums"

    # The new pattern starts on a bar (cycle) boundary at or after the edit, and nothing old plays after it.
    first_hh = next(fields(r)["cycle"] for r in got if fields(r)["s"] == "hh")
    assert float(first_hh).is_integer()
    assert got[0].wall is not None
    boundary_wall = got[0].wall + first_hh * CYCLE_SECONDS
    # The first bar at or after the scheduler's horizon when the edit reached it: not before the edit was
    # made, and not a bar later than needed (the horizon is at most one lookahead past the moment it arrived).
    assert before <= boundary_wall < edited_at + CYCLE_SECONDS + 0.5
    old = [fields(r) for r in got if fields(r)["s"] != "hh"]
    new = [fields(r) for r in got if fields(r)["s"] == "hh"]
    assert all(f["cycle"] < first_hh for f in old)

    # What Tidal/Strudel would send for the same patterns: one message per hap onset, s/n split from `sd:1`,
    # cycle = whole begin, delta = the whole's duration in seconds.
    last_old_cycle = int(first_hh)
    want_old = [
        (float(c), v if isinstance(v, str) else v[0], float(d) * CYCLE_SECONDS)
        for c, v, d in onsets("bd*2 [~ sd:1]", 0, last_old_cycle)
    ]
    assert len(want_old) == 3 * last_old_cycle
    assert [(f["cycle"], f["s"]) for f in old] == [(c, s) for c, s, _ in want_old]
    assert [f["delta"] for f in old] == pytest.approx([d for _, _, d in want_old])
    assert [f.get("n") for f in old] == [None if s == "bd" else 1.0 for _, s, _ in want_old]
    want_new = onsets("hh*4", last_old_cycle, last_old_cycle + 2)
    assert [(f["cycle"], f["s"], f["delta"]) for f in new[:8]] == [
        (float(c), "hh", float(d) * CYCLE_SECONDS) for c, _, d in want_new
    ]
    ahead = [r.ahead for r in got]
    assert all(a is not None and a > 0 for a in ahead)


def poll(kernel: Kernel, expr: str, predicate: Any, timeout: float = 15.0) -> Any:
    """Evaluate `expr` in the kernel until `predicate(value)` holds (each try is a cell round trip)."""
    import ast

    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = ast.literal_eval(kernel.ok(f"print(repr({expr}))").strip())
        if predicate(value):
            return value
    raise AssertionError(f"{expr} stayed {value!r}")


def test_an_unreachable_superdirt_is_reported_once_per_edit_and_the_clock_keeps_going(kernel: Kernel):
    from tests.timing.conftest import free_udp_port

    port = free_udp_port()  # nothing listens there
    kernel.ok("import time\nk = get_ipython().kernel\nwhile not k.runtime.alive:\n    time.sleep(0.01)")
    kernel.ok(f"vt.bpm({BPM})\nvt.module('drums', 'pattern', pattern='bd*4')\nvt.superdirt(port={port})\nvt.play()")
    count = "sum('nothing listens' in line for line in k.runtime.reports())"
    poll(kernel, count, lambda n: n == 1)
    rendered = poll(kernel, "k.runtime.telemetry().get('events', 0)", lambda n: n > 0)
    kernel.ok("vt.set('superdirt.orbit', 1)")  # an edit of that output: its next refusal is news again
    poll(kernel, count, lambda n: n == 2)
    lines = poll(kernel, "[l for l in k.runtime.reports() if 'nothing listens' in l]", lambda ls: len(ls) == 2)
    assert all("\n" not in line and f"127.0.0.1:{port}" in line and line.startswith("superdirt: ") for line in lines)
    # The clock never stopped: events are still rendered and sent (into the void).
    poll(kernel, "k.runtime.telemetry().get('events', 0)", lambda n: n > rendered + 8)
