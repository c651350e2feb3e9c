"""The tempo map: absolute deadlines, exact timetags, quantization boundaries."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vtkernel.engine.timing.clock import NTP_UNITS, TempoMap, WallClock, quantize_beat, timetag_to_wall

WALL = WallClock(1.7e9 + 0.123456789)


@given(st.floats(20, 999), st.floats(0, 1e6), st.sampled_from([1, 2, 3, 4, 6, 8, 16]), st.integers(0, 100_000))
def test_timetags_lie_on_the_exact_step_grid(bpm, start, division, k):
    tempo = TempoMap.start(bpm, start, WALL)
    ideal = tempo.anchor_tag + Fraction(k, division) * 60 / Fraction(bpm) * NTP_UNITS  # exact arithmetic
    assert abs(tempo.timetag_of(k / division) - ideal) <= 2  # 2 units of 2**-32 s: half a nanosecond


@given(st.floats(20, 999), st.floats(20, 999), st.integers(0, 64), st.integers(0, 64))
def test_a_tempo_change_keeps_earlier_beats_and_continues_without_a_jump(bpm1, bpm2, at, later):
    tempo = TempoMap.start(bpm1, 100.0, WALL)
    changed = tempo.with_bpm(bpm2, float(at))
    assert changed.time_of(at) == pytest.approx(tempo.time_of(at), abs=1e-9)
    assert changed.time_of(at + later) == pytest.approx(tempo.time_of(at) + later * 60 / bpm2, abs=1e-9)
    assert changed.beat_at(changed.time_of(at + later)) == pytest.approx(at + later, abs=1e-9)


def test_wall_clock_timetag_matches_float_wall_time():
    wall = WallClock.now()
    assert timetag_to_wall(wall.timetag(1000.25)) == pytest.approx(wall.wall(1000.25), abs=1e-6)


@pytest.mark.parametrize(
    ("horizon", "quantize", "steps_per_beat", "meter", "expected"),
    [
        (1.1, "step", 4, 4, 1.25),
        (1.25, "step", 4, 4, 1.25),  # a horizon on a boundary is its own boundary
        (1.1, "step", 3, 4, 4 / 3),
        (1.1, "beat", 4, 4, 2.0),
        (1.1, "bar", 4, 4, 4.0),
        (4.0, "bar", 4, 4, 4.0),
        (4.5, "bar", 3, 3, 6.0),
        (1.1, "now", 4, 4, 1.1),
    ],
)
def test_quantize_boundaries(horizon, quantize, steps_per_beat, meter, expected):
    assert quantize_beat(horizon, quantize, steps_per_beat=steps_per_beat, meter=meter) == expected
