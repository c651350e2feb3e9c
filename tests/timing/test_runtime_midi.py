"""MIDI at its exact time (issue 11): no timetags, so the moment of the send is the moment it sounds.

The scheduler sleeps until just before each MIDI deadline, waits out the rest
on the monotonic clock and sends. Through a mido backend that logs the
monotonic time of every send (`midi_null_backend`; this machine has no MIDI
port), this checks what must hold: every message goes, none before its
deadline, in order, and the lateness is in telemetry. How late (p99 against
isobar's 0.25 ms) is a figure for `benchmarks/bench_timing.py`, not an assert.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.timing.conftest import Rig
from vtkernel.engine import Engine
from vtkernel.runtime import Runtime

BPM = 240.0
DIVISION = 4


@pytest.fixture
def midi_rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    pytest.importorskip("mido")
    log = tmp_path / "midi.log"
    monkeypatch.setenv("MIDO_BACKEND", "tests.timing.midi_null_backend")
    monkeypatch.setenv("VT_MIDI_LOG", str(log))
    engine = Engine().start()
    runtime = Runtime(engine).start()
    try:
        yield Rig(engine, runtime, None), log  # type: ignore[arg-type]
    finally:
        runtime.stop()
        engine.stop()


def test_midi_notes_leave_at_their_time_never_before(midi_rig) -> None:
    rig, log = midi_rig
    rig.do(
        {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [60, 62], "division": DIVISION}},
        {"op": "add_module", "name": "m", "type": "midi_out", "params": {}},
        {"op": "connect", "src": "s.out", "dst": "m.in"},
        {"op": "set_bpm", "bpm": BPM},
        {"op": "play"},
    )
    tel = rig.runtime.wait_telemetry(lambda t: (t.get("midi_send_lateness_ms") or {}).get("n", 0) >= 40, timeout=20)
    assert rig.runtime.reports() == []
    transport = tel["transport"]
    lines = [ln.split() for ln in log.read_text().splitlines() if ln.strip()]
    ons = [(float(t), int(status), int(note)) for t, status, note, vel in lines if int(status) & 0xF0 == 0x90 and int(vel) > 0]
    assert len(ons) >= 20
    step = 60.0 / transport["bpm"] / DIVISION
    grid0 = transport["anchor_time"] - transport["anchor_beat"] * 60.0 / transport["bpm"]
    times = [t for t, _, _ in ons]
    assert times == sorted(times)
    for t, _, note in ons:
        k = math.floor((t - grid0) / step + 1e-9)  # the grid point at or before the send
        deadline = grid0 + k * step
        assert 0.0 <= t - deadline < step / 2, f"note {note} sent {1000 * (t - deadline):.3f} ms from its deadline"
        assert note == (60 if k % 2 == 0 else 62)  # and it is the note of that step
    late = tel["midi_send_lateness_ms"]
    assert late["p50"] is not None and late["p50"] >= 0.0 and late["max"] >= late["p99"] >= late["p50"]
