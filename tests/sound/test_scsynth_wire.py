"""The `scsynth` sink on the wire: what it sends, parsed by a real OSC parser on a real UDP socket.

No SuperCollider here: the receiver stands where scsynth would, so these check the
exact messages (the connect handshake, `/s_new` layout, controls, timetags, the gate
mode's `/n_set`) and what happens when nobody answers. `test_scsynth.py` plays them
through a real server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vtkernel.engine import Engine
from vtkernel.engine.schema import BUILTIN_TYPES, Event
from vtkernel.engine.scsynth import (
    CONNECTIONS,
    DEF_LOAD_SECONDS,
    RETRY_SECONDS,
    SYNTHDEF_BLOB,
    SYNTHDEF_NAMES,
    ScsynthOut,
    midi_to_hz,
    note_number,
    synthdef_bundle,
    synthdef_files,
)
from vtkernel.engine.timing.clock import NTP_UNITS, WallClock
from vtkernel.engine.timing.outputs import SchedulerOutputs
from vtkernel.protocol import parse_command
from vtkernel.runtime import Runtime
from vtkernel.testing.osc import OscReceiver, Received

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"host": "127.0.0.1", "synth": "sine", "group": 1, "add_action": "head", "release": "timed"}


@pytest.fixture
def rx() -> Iterator[OscReceiver]:
    with OscReceiver() as receiver:
        yield receiver
    CONNECTIONS.servers.pop(("127.0.0.1", receiver.port), None)  # this process's handshake state


def event(out: SchedulerOutputs, value: Any, *, ahead: float = 0.2, duration: float = 0.0, spb: float = 0.5) -> Event:
    t = time.monotonic() + ahead
    return Event(0.0, t, out.wall.wall(t), out.wall.timetag(t), value, "src", spb, duration, 0.0, 0.0)


def sink(name: str = "sc") -> ScsynthOut:
    s = ScsynthOut()
    s.name = name
    return s


def controls(msg: Received) -> dict[str, Any]:
    args = msg.args[4:]
    return dict(zip(args[::2], args[1::2], strict=True))


def test_the_sink_is_a_builtin_type_and_ships_every_synthdef() -> None:
    assert ScsynthOut in BUILTIN_TYPES
    assert set(SYNTHDEF_NAMES) == {"sine", "saw", "fm", "kick", "hat", "vt_record"}
    files = synthdef_files()
    blob = synthdef_bundle(files)
    assert blob[:4] == b"SCgf" and int.from_bytes(blob[8:10], "big") == len(files) == len(SYNTHDEF_NAMES)
    for name in SYNTHDEF_NAMES:  # each definition's name is inside the blob /d_recv sends
        assert bytes([len(name)]) + name.encode() in SYNTHDEF_BLOB


def test_shipped_synthdefs_are_what_the_build_script_makes() -> None:
    pytest.importorskip("supriya")
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_synthdefs.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_note_names_and_numbers() -> None:
    assert note_number("c4") == 60 and note_number("a4") == 69 and note_number("eb3") == 51
    assert note_number("c#5") == 73 and note_number("a") == 57 and note_number(62) == 62
    assert note_number("zz") is None and note_number(True) is None and note_number(float("nan")) is None
    assert midi_to_hz(69) == 440.0


def test_connect_sends_the_synthdefs_then_the_group_then_timed_s_new(rx: OscReceiver) -> None:
    out = SchedulerOutputs(WallClock.now())
    s, ev = sink(), None
    ev = event(out, {"s": "saw", "note": "a4", "gain": 0.5, "pan": 0.25, "cutoff": 900, "vowel": "a", "orbit": 1})
    s.emit({**PARAMS, "port": rx.port}, ev, out)
    got = rx.wait_for(3)
    assert [m.address for m in got] == ["/d_recv", "/g_new", "/s_new"]
    assert got[0].timetag is None and got[0].args == (SYNTHDEF_BLOB,)
    assert got[1].timetag is None and got[1].args == (1, 0, 0)
    new = got[2]
    assert new.timetag == ev.timetag  # the event's exact time, not rounded
    assert new.args[0] == "saw" and new.args[2:4] == (0, 1)  # head of group 1
    c = controls(new)
    assert c["freq"] == pytest.approx(440.0)
    # Numeric fields become controls; strings do not (`vowel`); `s`/`note` are not controls.
    assert c["gain"] == 0.5 and c["pan"] == 0.25 and c["cutoff"] == 900 and c["orbit"] == 1
    assert "vowel" not in c and "s" not in c and "note" not in c
    assert "sustain" not in c  # the event says no duration: the SynthDef's own default
    assert out.reports == []


def test_values_fields_and_sustain(rx: OscReceiver) -> None:
    out = SchedulerOutputs(WallClock.now())
    s = sink()
    p = {**PARAMS, "port": rx.port, "synth": "fm"}
    s.emit(p, event(out, 60, duration=0.5), out)  # a plain number is a note; half a beat at 0.5 s/beat
    s.emit(p, event(out, "bd"), out)  # a plain string is `s`; bd is the shipped kick
    s.emit(p, event(out, ["hh", 3]), out)  # bd:3 style
    s.emit(p, event(out, {"freq": 123.0, "n": 60, "legato": 2.0}, duration=0.25), out)
    s.emit(p, event(out, {"n": 48, "sustain": 0.7}), out)
    news = [m for m in rx.wait_for(7) if m.address == "/s_new"]
    assert [m.args[0] for m in news] == ["fm", "kick", "hat", "fm", "fm"]
    assert len({m.args[1] for m in news}) == 5  # node ids never repeat
    c = [controls(m) for m in news]
    assert c[0]["freq"] == pytest.approx(midi_to_hz(60)) and c[0]["sustain"] == pytest.approx(0.25)
    assert "freq" not in c[1] and "freq" not in c[2]  # drums: a note or `n` (hh:3) does not retune them
    assert c[3]["freq"] == 123.0 and c[3]["sustain"] == pytest.approx(0.25 * 0.5 * 2.0)  # freq wins; legato scales
    assert c[4]["freq"] == pytest.approx(midi_to_hz(48)) and c[4]["sustain"] == pytest.approx(0.7)  # OSC floats are 32-bit


def test_gate_mode_holds_the_note_and_sends_gate_off_at_its_end(rx: OscReceiver) -> None:
    out = SchedulerOutputs(WallClock.now())
    ev = event(out, {"note": 64}, duration=1.0, spb=0.4)
    sink().emit({**PARAMS, "port": rx.port, "release": "gate"}, ev, out)
    new, off = [m for m in rx.wait_for(4) if m.address in ("/s_new", "/n_set")]
    assert controls(new)["sustain"] == 0.0  # held until the gate closes
    assert off.args == (new.args[1], "gate", 0.0)
    assert off.timetag is not None and off.timetag - ev.timetag == round(0.4 * NTP_UNITS)


def test_first_events_wait_for_the_definitions_to_load(rx: OscReceiver) -> None:
    out = SchedulerOutputs(WallClock.now())
    ev = event(out, 60, ahead=0.0)  # due now: scsynth could not have loaded the definitions yet
    before = time.time()
    sink().emit({**PARAMS, "port": rx.port}, ev, out)
    (new,) = [m for m in rx.wait_for(3) if m.address == "/s_new"]
    assert new.wall is not None and new.wall >= before + DEF_LOAD_SECONDS - 0.001
    later = event(out, 62, ahead=0.2)  # later events keep their exact time
    sink().emit({**PARAMS, "port": rx.port}, later, out)
    assert rx.wait_for(4)[-1].timetag == later.timetag


def test_silent_receiver_gets_the_definitions_again_and_one_report(rx: OscReceiver) -> None:
    out = SchedulerOutputs(WallClock.now())
    s = sink("quiet")
    p = {**PARAMS, "port": rx.port}
    s.emit(p, event(out, 60), out)
    deadline = time.monotonic() + RETRY_SECONDS + 2
    while time.monotonic() < deadline and sum(m.address == "/d_recv" for m in rx.received) < 2:
        s.emit(p, event(out, 60), out)  # events keep flowing; nobody answers /done
        time.sleep(0.05)
    assert sum(m.address == "/d_recv" for m in rx.received) >= 2
    assert len(out.reports) == 1 and "does not answer" in out.reports[0] and out.reports[0].startswith("quiet:")


def test_dead_port_is_reported_once_and_the_clock_keeps_running(rx: OscReceiver) -> None:
    """Through the real scheduler process: nothing listens on the port."""
    from tests.timing.conftest import free_udp_port

    dead = free_udp_port()
    engine = Engine().start()
    reports: list[str] = []
    runtime = Runtime(engine, lookahead=0.05, on_report=reports.append).start()
    try:
        for data in (
            {"op": "add_module", "name": "beat", "type": "seq", "params": {"steps": [60, 62], "division": 4}},
            {"op": "add_module", "name": "sc", "type": "scsynth", "params": {"port": dead}},
            {"op": "add_module", "name": "alive", "type": "osc_out", "params": {"port": rx.port}},
            {"op": "connect", "src": "beat.out", "dst": "sc.in"},
            {"op": "connect", "src": "beat.out", "dst": "alive.in"},
            {"op": "set_bpm", "bpm": 240},
            {"op": "play"},
        ):
            assert engine.call(parse_command(data)).error is None
        assert runtime.wait_synced()
        assert len(rx.wait_for(40, timeout=10)) >= 40  # 40 steps later the clock still runs
        refused = [r for r in reports if r.startswith("sc:")]
        assert len(refused) == 1, reports
        assert "connection refused" in refused[0] or "does not answer" in refused[0]
    finally:
        runtime.stop()
        engine.stop()


def test_the_synthdefs_go_out_when_the_module_appears_before_any_event(rx: OscReceiver) -> None:
    """Through the real scheduler process, transport stopped: declaring the module connects it."""
    engine = Engine().start()
    runtime = Runtime(engine, lookahead=0.05).start()
    try:
        add = {"op": "add_module", "name": "sc", "type": "scsynth", "params": {"port": rx.port, "group": 7}}
        assert engine.call(parse_command(add)).error is None
        assert runtime.wait_synced()
        got = rx.wait_for(2, timeout=10)
        assert [m.address for m in got[:2]] == ["/d_recv", "/g_new"] and got[1].args == (7, 0, 0)
        assert not runtime.telemetry().get("playing")
    finally:
        runtime.stop()
        engine.stop()


def test_a_sound_name_with_no_shipped_synthdef_is_said_once_not_left_to_scsynths_log(rx: OscReceiver) -> None:
    """`bd*2 [~ sd] <cp hh>` on a bare scsynth: sd and cp have no SynthDef, and scsynth only logs that itself."""
    out = SchedulerOutputs(WallClock.now())
    s = sink("drums")
    p = {**PARAMS, "port": rx.port}
    for name in ("bd", "sd", "sd", "cp", "hh"):
        s.emit(p, event(out, {"s": name}), out)
    lines = [line for line in out.reports if "not a shipped SynthDef" in line]
    assert len(lines) == 2 and "'sd'" in lines[0] and "'cp'" in lines[1], out.reports
    assert "kick" in lines[0] and "\n" not in lines[0]
