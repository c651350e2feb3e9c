"""The tempo map: beats <-> monotonic seconds <-> OSC timetags. Pure.

A `TempoMap` is one straight line: at monotonic time `anchor_time` the
transport is at `anchor_beat`, and it advances `bpm / 60` beats per second.
A tempo change starts a new line at the beat where it takes effect, so every
event time is `anchor_time + (beat - anchor_beat) * 60 / bpm`: computed from
an absolute anchor, never accumulated, so nothing drifts.

Monotonic time maps to wall-clock time by one fixed offset taken when the
scheduler starts (`WallClock`). Timetags are computed in integer units of
2**-32 s from an exact integer anchor, so events on the beat grid get
timetags on the grid to well under a microsecond (float seconds since 1970
would only resolve about 0.24 us).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

NTP_DELTA = 2_208_988_800  # seconds from 1900-01-01 (NTP epoch) to 1970-01-01
NTP_UNITS = 1 << 32  # timetag units per second

BEAT_EPSILON = 1e-9  # beats; absorbs float rounding when a time lands on a grid point


@dataclass(frozen=True, slots=True)
class WallClock:
    """A fixed mapping from `time.monotonic()` to `time.time()` and to OSC timetags."""

    offset: float  # wall = monotonic + offset

    @classmethod
    def now(cls) -> WallClock:
        # The sample with the tightest bracket gives the best offset.
        best = math.inf
        offset = 0.0
        for _ in range(5):
            m0 = time.monotonic()
            w = time.time()
            m1 = time.monotonic()
            if m1 - m0 < best:
                best = m1 - m0
                offset = w - (m0 + m1) / 2
        return cls(offset)

    def wall(self, t: float) -> float:
        return t + self.offset

    def timetag(self, t: float) -> int:
        """The OSC timetag of monotonic time `t`."""
        w = t + self.offset
        whole = math.floor(w)
        return ((whole + NTP_DELTA) << 32) + round((w - whole) * NTP_UNITS)


def timetag_to_wall(timetag: int) -> float:
    return timetag / NTP_UNITS - NTP_DELTA


@dataclass(frozen=True, slots=True)
class TempoMap:
    """One tempo segment: `anchor_beat` sounds at monotonic `anchor_time` (timetag `anchor_tag`)."""

    bpm: float
    anchor_time: float
    anchor_beat: float
    anchor_tag: int

    @classmethod
    def start(cls, bpm: float, at: float, wall: WallClock, beat: float = 0.0) -> TempoMap:
        return cls(bpm, at, beat, wall.timetag(at))

    @property
    def seconds_per_beat(self) -> float:
        return 60.0 / self.bpm

    def time_of(self, beat: float) -> float:
        return self.anchor_time + (beat - self.anchor_beat) * 60.0 / self.bpm

    def beat_at(self, t: float) -> float:
        return self.anchor_beat + (t - self.anchor_time) * self.bpm / 60.0

    def timetag_of(self, beat: float) -> int:
        return self.anchor_tag + round((beat - self.anchor_beat) * 60.0 / self.bpm * NTP_UNITS)

    def with_bpm(self, bpm: float, at_beat: float) -> TempoMap:
        """The tempo changes to `bpm` from `at_beat` on; earlier beats keep their times."""
        return TempoMap(bpm, self.time_of(at_beat), at_beat, self.timetag_of(at_beat))


def quantize_beat(beat: float, quantize: str, *, steps_per_beat: int, meter: int) -> float:
    """The beat where a change quantized to `quantize` takes effect, given the horizon `beat`.

    A horizon exactly on a boundary is its own boundary. Boundaries are
    computed as `index / steps_per_beat` or `index * meter`, the same
    arithmetic as the pattern grid, so they coincide with onsets exactly.
    """
    if quantize == "step":
        return math.ceil(beat * steps_per_beat - BEAT_EPSILON) / steps_per_beat
    if quantize == "beat":
        return float(math.ceil(beat - BEAT_EPSILON))
    if quantize == "bar":
        return float(math.ceil(beat / meter - BEAT_EPSILON) * meter)
    return beat
