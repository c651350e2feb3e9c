"""Sound through a real SuperCollider server: a kernel, `vt.scsynth()`, scsynth on JACK's dummy driver.

What is checked, at the server:

- every event starts one synth (`/n_go` per node id, counted against the events the
  kernel's recorder saw);
- no bundle is late (scsynth prints `late 0.0xx` for one that arrives after its
  timetag), idle and while a cell burns the CPU;
- the sound, recorded on the server to a WAV (DiskOut), is not silent, and its
  onsets lie on the beat grid: each coincides to the sample with a reference kick
  this test sends itself on the right channel (the pattern plays `pan 0`, left).

The sources are `pattern` modules, so the events are mappings of named fields
(`note`, `s`, `pan`, `decay`) that reach scsynth as SynthDef controls.
"""

from __future__ import annotations

import itertools
import json
import time
import wave
from pathlib import Path

import pytest

from tests.conftest import Kernel
from vtkernel.engine.timing.clock import NTP_DELTA, NTP_UNITS
from vtkernel.testing.scsynth import ScsynthServer

BPM = 240.0  # 0.25 s per beat
GROUP = 1
RECORD_NODE = 999

def nodes(server: ScsynthServer) -> list[tuple[float, int]]:
    """`/n_go`s of synths the sink started (not the group, not the recorder)."""
    return [(t, n) for t, n in server.started if n not in (GROUP, RECORD_NODE)]


def timetag(wall: float) -> int:
    return round((wall + NTP_DELTA) * NTP_UNITS)


def test_vt_scsynth_declares_the_output_and_connects_patterns(k: Kernel, server: ScsynthServer) -> None:
    out = k.ok(
        "vt.bpm(240)\n"
        "vt.module('melody', 'pattern', pattern=vt.patterns.note('[c4 e4 ~ g4]*4').s('saw'))\n"
        f"print(vt.scsynth(port={server.port}))\n"
        f"vt.scsynth(port={server.port})  # idempotent\n"
        "print(sorted(c for c in vt.snapshot().doc.connections))"
    )
    assert out.splitlines() == ["scsynth", "[('melody.out', 'scsynth.in')]"]


def test_each_event_starts_one_synth_and_none_is_late(k: Kernel, server: ScsynthServer, tmp_path: Path) -> None:
    k.ok("vt.module('rec', 'recorder', size=1000)\nvt.connect('melody.out', 'rec.in')")
    before = len(nodes(server))
    since = time.monotonic()
    k.ok("vt.play()")
    # Idle: play until 24 synths have started (8 beats of 3 notes).
    assert server.wait_for(lambda: len(nodes(server)) >= before + 24, 15), server.log[-5:]
    # A CPU-bound cell: the test waits for its marker (the cell is running), then for its end.
    marker = tmp_path / "busy"
    busy = (
        f"import pathlib, time\npathlib.Path({str(marker)!r}).write_text('x')\n"
        "t = time.perf_counter()\nwhile time.perf_counter() - t < 1.5:\n    pass\n"
    )
    msg_id = k.kc.execute(busy)
    deadline = time.monotonic() + 30
    while not marker.exists():
        assert time.monotonic() < deadline, "the busy cell never started"
        time.sleep(0.01)
    busy_from = time.time()
    reply = k.kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
    busy_to = time.time()
    k.ok("vt.stop()")
    recorded = int(k.ok("print(len(vt.recorded('rec')))"))
    # Everything sent has reached its time by one lookahead after stop: wait for the count.
    assert server.wait_for(lambda: len(nodes(server)) - before >= recorded, 5)
    started = nodes(server)[before:]
    assert len(started) == recorded  # one synth per event, none lost, none doubled
    assert len({n for _, n in started}) == len(started)
    during = [t for t, _ in started if busy_from <= t <= busy_to]
    assert len(during) >= 12, "notes kept starting while the cell was busy"  # 1.5 s at 12 notes/s ≈ 18
    assert server.late_lines(since) == []
    k.ok("vt.disconnect('melody.out', 'scsynth.in')")


def test_recorded_audio_is_not_silent_and_onsets_lie_on_the_beat_grid(
    k: Kernel, server: ScsynthServer, tmp_path: Path
) -> None:
    """Kicks from the kernel (left) against reference kicks this test sends itself (right).

    Under load, the dummy driver's sample clock wanders from wall time by several ms
    within seconds, so one linear map from samples to wall time cannot anchor a take.
    Instead, once the first two events are known, the test predicts the beat grid and
    sends an identical kick (same SynthDef, same controls, `pan 1`) for each coming
    beat. scsynth places both with the same clock, so their onsets coincide to the
    sample exactly when the kernel's event is on the grid.
    """
    import numpy as np

    wav = tmp_path / "take.wav"
    deadline = time.monotonic() + 5
    while server.status()[2] > 0:  # the last test's notes have ended: the take starts silent
        assert time.monotonic() < deadline, "synths still running"
    server.start_recording(wav, node=RECORD_NODE)
    k.ok(
        "vt.remove('melody')\n"
        "vt.module('kick', 'pattern', pattern=vt.patterns.s('kick*4').pan(0).decay(0.08))\n"  # one per beat, left
        "vt.scsynth(port=vt.get('scsynth.port'))\n"  # connects the new pattern: its output went nowhere
        "vt.module('hits', 'recorder', size=1000)\n"
        "vt.connect('kick.out', 'hits.in')"
    )
    since = time.monotonic()
    k.ok("vt.play()")
    first: list[float] = []
    deadline = time.monotonic() + 10
    while len(first) < 2:
        assert time.monotonic() < deadline, "no events recorded"
        first = [wall for wall, _, _ in json.loads(k.ok("import json; print(json.dumps(vt.recorded('hits')))"))]
    period = 60.0 / BPM
    assert first[1] - first[0] == pytest.approx(period, abs=1e-6)
    beat = max(3, int((time.time() + 0.2 - first[0]) / period) + 1)  # far enough ahead to send in time
    grid = [first[0] + (beat + i) * period for i in range(8)]
    for i, at in enumerate(grid):
        server.send_bundle(timetag(at), "/s_new", "kick", 90000 + i, 0, 0, "pan", 1.0, "gain", 1.0, "decay", 0.08)
    assert server.wait_for(lambda: any(n == 90007 for _, n in server.started), 10)
    k.ok("vt.stop()")
    server.stop_recording()
    assert server.late_lines(since) == []

    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2) / 32768.0
    left, right = audio[:, 0], audio[:, 1]
    assert np.sqrt(np.mean(left**2)) > 0.01 and np.abs(left).max() > 0.2, "the kernel's kicks are silent"
    ours, refs = np.array(onsets(left, rate)), onsets(right, rate)
    assert len(refs) == len(grid), refs
    assert len(ours) >= len(grid) + 2
    # For each reference kick, the kernel's kick nearest to it: the same sample, give or take one.
    offsets = [int(ours[np.abs(ours - r).argmin()] - r) for r in refs]
    print(f"kernel kick minus reference kick, in samples: {offsets}")
    assert max(abs(o) for o in offsets) <= 1, f"kernel kick minus reference kick, in samples: {offsets}"


def onsets(x: object, rate: int, threshold: float = 0.05, gap: float = 0.05) -> list[int]:
    """Sample indexes where |x| first crosses `threshold` after at least `gap` seconds below it."""
    import numpy as np

    idx = np.flatnonzero(np.abs(np.asarray(x)) > threshold)
    if idx.size == 0:
        return []
    return [int(idx[0])] + [int(b) for a, b in itertools.pairwise(idx) if b - a > gap * rate]


def test_voices_end_by_themselves_after_sustain_or_when_the_gate_closes(server: ScsynthServer) -> None:
    """The shipped SynthDefs' envelopes, on the real server: timed notes and gated notes both free their node."""
    from vtkernel.engine.schema import Event
    from vtkernel.engine.scsynth import ScsynthOut
    from vtkernel.engine.timing.clock import WallClock
    from vtkernel.engine.timing.outputs import SchedulerOutputs

    out = SchedulerOutputs(WallClock.now())
    sink = ScsynthOut()
    sink.name = "direct"
    base = {"host": "127.0.0.1", "port": server.port, "synth": "sine", "group": GROUP, "add_action": "head"}
    seen = len(server.replies)
    timed = {"note": 60, "release": 0.05, "velocity": 0.5, "gain": 0.75, "vowel": "a"}
    for release, value in (("timed", timed), ("gate", {"s": "fm", "note": 64, "release": 0.05})):
        t = time.monotonic() + 0.1
        # Half a beat at 0.6 s per beat: 0.3 s, then the 0.05 s release.
        ev = Event(0.0, t, out.wall.wall(t), out.wall.timetag(t), value, "src", 0.6, 0.5, 0.0, 0.0)
        sink.emit({**base, "release": release}, ev, out)
    assert out.reports == []

    def ends() -> dict[int, tuple[float, float]]:
        go = {args[0]: at for at, a, args in server.replies[seen:] if a == "/n_go"}
        return {args[0]: (go[args[0]], at) for at, a, args in server.replies[seen:] if a == "/n_end" and args[0] in go}

    # While the timed note sounds, its controls are the event's fields (freq from the note name's MIDI 60).
    assert server.wait_for(lambda: any(a == "/n_go" and r[0] > 1000 for _, a, r in server.replies[seen:]), 5)
    node = next(r[0] for _, a, r in server.replies[seen:] if a == "/n_go" and r[0] > 1000)
    got = server.request("/s_get", node, "freq", "velocity", "gain", "sustain", reply="/n_set")
    controls = dict(zip(got[1::2], got[2::2], strict=True))
    assert controls == pytest.approx({"freq": 261.6256, "velocity": 0.5, "gain": 0.75, "sustain": 0.3}, rel=1e-4)
    assert server.wait_for(lambda: len(ends()) == 2, 5), server.replies[seen:]
    for started, ended in ends().values():
        assert 0.3 + 0.05 - 0.02 <= ended - started <= 0.3 + 0.05 + 0.05, ended - started
