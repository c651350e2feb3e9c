"""Ableton Link in the timing process: the shared tempo, beat and phase of a session (SPEC §10).

The peer lives here, in the scheduler child, never in the kernel's main
process: its beat is read where the clock is kept, and a cell holding the
kernel's GIL cannot delay it. It is the real protocol, through the `aalink`
binding (Ableton's Link library); vtkernel writes no sync protocol of its own.

How vtkernel's beat grid follows the session:

- A *sample* reads Link's beat between two `time.monotonic()` readings, so
  it is "at monotonic time t, the session is at Link beat b, at this tempo",
  to about a microsecond. Link's own clock is never mixed with ours.
- vtkernel's beat is Link's beat minus an *origin*, a whole number of
  quanta (quantum = the meter), so a vtkernel bar starts with the session's
  bar. On `play` the origin is the session's next bar one lookahead ahead
  (joining late aligns at the next bar); alone in a session, the session's
  beat is moved so that its bar starts one lookahead from now, as a solo
  `play` always did.
- Each tick the renderer compares its tempo map with a fresh sample and
  re-anchors when the tempo differs or the grids drift apart by more than
  `DRIFT_BEATS`: timetags stay exact (computed from the anchor, in integer
  2⁻³² s units), and the map moves only when the session does.
- A tempo set from any shell is proposed to the session; a tempo another
  peer sets is followed (the parent turns the telemetry's `link.tempo` into a
  `set_bpm` with origin `link`, so every shell sees it).

Multicast: Link discovers peers on every interface. Tests and benchmarks
run it only inside a private network namespace (docs/link.md).

Owner: the scheduler thread (the renderer calls it while rendering).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DRIFT_BEATS = 1e-4  # re-anchor when the grids differ by more (0.05 ms at 120 bpm)
TEMPO_MIN, TEMPO_MAX = 20.0, 999.0


@dataclass(frozen=True, slots=True)
class LinkSample:
    """The session at one instant: at monotonic `time`, Link's timeline is at `beat`, moving at `tempo`."""

    time: float
    beat: float
    tempo: float
    peers: int


def _make_link(bpm: float) -> Any:
    """A disabled `aalink.Link` (it wants an event loop while it is built; it is only read afterwards)."""
    import aalink

    loop = asyncio.new_event_loop()
    try:

        async def build() -> Any:
            return aalink.Link(bpm)

        return loop.run_until_complete(build())
    finally:
        loop.close()


class LinkSession:
    """One Link peer, made when the document joins a session and dropped when it leaves.

    `factory` makes the peer (tests may pass another real Link peer's
    factory; the default imports `aalink`).
    """

    def __init__(self, factory: Callable[[float], Any] = _make_link) -> None:
        self._factory = factory
        self._link: Any = None
        self.quantum = 4.0
        self.error: str | None = None  # why joining failed (no aalink), said once by the caller

    @property
    def active(self) -> bool:
        return self._link is not None

    def join(self, bpm: float, quantum: float) -> bool:
        """Enable the peer (idempotent). False, with `error` set, if it cannot be made."""
        if self._link is None:
            try:
                self._link = self._factory(_clamp(bpm))
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                return False
            self._link.enabled = True
        self.set_quantum(quantum)
        return True

    def leave(self) -> None:
        link, self._link = self._link, None
        if link is not None:
            link.enabled = False

    def set_start_stop_sync(self, on: bool) -> None:
        """Share play/stop with the session (Link's start/stop sync), or not."""
        if self._link is not None and bool(self._link.start_stop_sync_enabled) != on:
            self._link.start_stop_sync_enabled = on

    @property
    def start_stop_sync(self) -> bool:
        return self._link is not None and bool(self._link.start_stop_sync_enabled)

    def propose_playing(self, playing: bool) -> None:
        """Our play or stop, told to the session (only while start/stop sync is on)."""
        if self.start_stop_sync and bool(self._link.playing) != playing:
            self._link.playing = playing

    def session_playing(self) -> bool:
        return self._link is not None and bool(self._link.playing)

    def set_quantum(self, quantum: float) -> None:
        self.quantum = float(quantum)
        if self._link is not None:
            self._link.quantum = self.quantum

    def sample(self) -> LinkSample:
        link = self._link
        assert link is not None
        t0 = time.monotonic()
        beat = float(link.beat)
        t1 = time.monotonic()
        return LinkSample((t0 + t1) / 2.0, beat, float(link.tempo), int(link.num_peers))

    def propose_tempo(self, bpm: float) -> None:
        if self._link is not None and abs(float(self._link.tempo) - bpm) > 1e-9:
            self._link.tempo = _clamp(bpm)

    def origin_for_start(self, at: float, bpm: float) -> tuple[float, LinkSample]:
        """The Link beat that becomes vtkernel's beat 0 for a `play` whose first beat is at monotonic `at`.

        With peers: the session's first bar boundary at or after `at` (so
        nothing already sent is late, and the bars line up). Alone: the
        session's timeline is moved so that a bar starts exactly at `at`.
        """
        link = self._link
        assert link is not None
        s = self.sample()
        if s.peers == 0:
            self.propose_tempo(bpm)
            link.request_beat(-(at - time.monotonic()) * bpm / 60.0)  # alone: Link's beat 0 (a bar) lands on `at`
            return 0.0, self.sample()
        return self.next_bar(s, at), s

    def next_bar(self, s: LinkSample, at: float) -> float:
        """The session's first bar boundary (a Link beat) at or after monotonic time `at`."""
        q = self.quantum
        beat_at = s.beat + (at - s.time) * s.tempo / 60.0
        return math.ceil(beat_at / q - 1e-9) * q

    def adopt(self, vt_beat: float) -> None:
        """Alone in a session: move its timeline so that its beat is ours now (bars line up, nothing jumps)."""
        if self._link is not None:
            self._link.request_beat(vt_beat)

    def phase(self, s: LinkSample) -> float:
        """Where the session is in its bar (0..quantum) at sample `s`."""
        return s.beat % self.quantum


def _clamp(bpm: float) -> float:
    return min(TEMPO_MAX, max(TEMPO_MIN, float(bpm)))


__all__ = ["DRIFT_BEATS", "LinkSample", "LinkSession"]
