"""MIDI messages from event fields (`note`/`n`/note names, `velocity`, `dur`/`legato`, `channel`, `ccN`).

The scheduler sends each message at its exact time (that loop is tested
with the scheduler); here the renderer hands them to `send_midi` with their
times, and we check the bytes and the times.
"""

from __future__ import annotations

from typing import Any

import pytest

from vtkernel.engine.schema import BUILTIN_TYPES, Event, ModuleType, Params, ParamSpec
from vtkernel.engine.sinks import MidiOut, midi_note, note_to_midi
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.render import Renderer

LOOKAHEAD = 0.05
SPB = 0.5  # 120 bpm


class Collect:
    """The `Outputs` a sink sees, keeping what it was asked to send."""

    def __init__(self) -> None:
        self.midi: list[tuple[float, tuple[int, ...]]] = []
        self.reports: list[str] = []

    def send_osc(self, module: str, host: str, port: int, address: str, timetag: int, args: Any) -> None:
        raise AssertionError("no OSC here")

    def send_midi(self, module: str, port: str, at: float, message: Any) -> None:
        self.midi.append((round(at, 9), tuple(message)))

    def record(self, module: str, event: Event) -> None:
        pass

    def report(self, module: str, key: str, message: str) -> None:
        self.reports.append(message)


class Fields(ModuleType):
    """Turns step k into the k-th mapping of its `table` param (JSON text)."""

    type_name = "fields"
    params = {"table": ParamSpec("string", "[]")}
    inputs = ("in",)
    outputs = ("out",)

    def process(self, p: Params, beat: float, value: Any) -> Any:
        import json

        return json.loads(p["table"])[int(value)]


def play(table: list[Any], midi: dict[str, Any] | None = None, division: int = 1) -> Collect:
    import json

    out = Collect()
    types = {cls.type_name: cls for cls in (*BUILTIN_TYPES, Fields)}
    r = Renderer(types, out, lookahead=LOOKAHEAD, wall=WallClock(1e9))
    r.reset(
        {
            "clock": {"bpm": 120.0, "playing": True, "meter": 4},
            "modules": {
                "s": {"type": "seq", "params": {"steps": list(range(len(table))), "division": division}},
                "f": {"type": "fields", "params": {"table": json.dumps(table)}},
                "m": {"type": "midi_out", "params": midi or {}},
            },
            "connections": [{"src": "s.out", "dst": "f.in"}, {"src": "f.out", "dst": "m.in"}],
        },
        1,
        now=0.0,
    )
    end = len(table) / division * SPB - 1e-6  # render exactly one pass over the table (see below)
    t = 0.0
    while t < end:  # in slices, as the loop would (a jump of more than 1 s is skipped as "behind")
        t = min(end, t + 0.25)
        r.advance(t)
    return out


def at(beat: float) -> float:
    return round(LOOKAHEAD + beat * SPB, 9)


def test_note_velocity_channel_and_duration_come_from_the_fields():
    out = play(
        [
            {"note": 60, "velocity": 0.5, "channel": 3},  # 0..1 velocity as Strudel's
            {"note": "c4", "velocity": 90},  # a note name; 0..127 velocity
            {"n": 62, "dur": 0.5},  # `n` when there is no `note`; `dur` in beats
            {"note": "eb3", "gain": 0.5},  # velocity param (100) x gain
        ]
    )
    assert out.midi == [
        (at(0), (0x92, 60, 64)),
        (at(1), (0x82, 60, 0)),  # the seq step's duration (1 beat) is the note's
        (at(1), (0x90, 60, 90)),
        (at(2), (0x80, 60, 0)),
        (at(2), (0x90, 62, 100)),
        (at(2.5), (0x80, 62, 0)),
        (at(3), (0x90, 51, 50)),
        (at(4), (0x80, 51, 0)),
    ]
    assert out.reports == []


def test_legato_sustain_and_the_length_param_set_the_note_off():
    out = play([{"note": 60, "legato": 0.5}, {"note": 61, "sustain": 0.1}, {"note": 62}], {"length": 0.0})
    offs = [(t, m) for t, m in out.midi if m[0] == 0x80]
    assert offs == [(at(0.5), (0x80, 60, 0)), (round(at(1) + 0.1, 9), (0x80, 61, 0)), (at(3), (0x80, 62, 0))]
    fixed = play([{"note": 60}], {"length": 0.25})
    assert fixed.midi[-1] == (at(0.25), (0x80, 60, 0))


def test_cc_fields_are_sent_at_the_onset_before_the_note():
    out = play([{"note": 60, "cc74": 0.5, "cc1": 100, "ccn": 7, "ccv": 0.25}], {"channel": 2})
    assert out.midi[:4] == [
        (at(0), (0xB1, 74, 64)),
        (at(0), (0xB1, 1, 100)),
        (at(0), (0xB1, 7, 32)),
        (at(0), (0x91, 60, 100)),
    ]


def test_ccs_alone_send_no_note_and_a_plain_number_is_a_note():
    out = play([{"cc74": 1.0}])
    assert out.midi == [(at(0), (0xB0, 74, 127))]
    seq_only = Collect()
    r = Renderer({c.type_name: c for c in BUILTIN_TYPES}, seq_only, lookahead=LOOKAHEAD, wall=WallClock(1e9))
    r.reset(
        {
            "clock": {"bpm": 120.0, "playing": True, "meter": 4},
            "modules": {"s": {"type": "seq", "params": {"steps": [64], "division": 1}}, "m": {"type": "midi_out", "params": {}}},
            "connections": [{"src": "s.out", "dst": "m.in"}],
        },
        1,
        now=0.0,
    )
    r.advance(SPB - LOOKAHEAD - 1e-6)
    assert seq_only.midi == [(at(0), (0x90, 64, 100)), (at(1), (0x80, 64, 0))]


def test_an_event_with_no_note_is_reported_once_per_module_in_one_line():
    out = play([{"s": "bd"}, {"s": "sd"}])
    assert out.midi == []
    assert out.reports and all("\n" not in line and "MIDI needs a note" in line for line in out.reports)


@pytest.mark.parametrize(
    ("name", "midi"),
    [("c4", 60), ("a4", 69), ("eb3", 51), ("f#5", 78), ("C2", 36), ("a", 57), ("cs4", 61), ("bf1", 34), ("c-1", 0)],
)
def test_note_names_follow_strudels_note_to_midi(name: str, midi: int):
    assert note_to_midi(name) == midi
    assert midi_note({"note": name}) == midi


def test_out_of_range_notes_are_clamped_and_nonsense_is_not_a_note():
    assert midi_note({"note": "zz"}) is None
    assert midi_note({"note": float("nan")}) is None
    assert midi_note({"note": True}) is None
    event = Event(0.0, 1.0, 1.0, 0, {"note": 300}, "s", 0.5, 1.0)
    assert MidiOut().messages({"channel": 1, "velocity": 100, "length": 0.0}, event)[0][1] == (0x90, 127, 100)


def test_midi_clock_ticks_24_times_a_beat_with_start_at_beat_zero():
    out = Collect()
    r = Renderer({c.type_name: c for c in BUILTIN_TYPES}, out, lookahead=LOOKAHEAD, wall=WallClock(1e9))
    r.reset(
        {
            "clock": {"bpm": 120.0, "playing": True, "meter": 4},
            "modules": {"c": {"type": "midi_clock", "params": {"ppq": 24}}, "m": {"type": "midi_out", "params": {}}},
            "connections": [{"src": "c.out", "dst": "m.in"}],
        },
        1,
        now=0.0,
    )
    t = 0.0
    end = 2 * SPB - 1e-6  # a render reaches one lookahead past now, and beat 0 is one lookahead after 0: two beats
    while t < end:  # in small windows, as the loop does
        r.advance(t)
        t += 0.013
    r.advance(end)
    assert out.midi[0] == (at(0), (0xFA,))  # Start, then the first tick at the same instant
    ticks = [when for when, message in out.midi if message == (0xF8,)]
    assert ticks == [at(k / 24) for k in range(48)]
