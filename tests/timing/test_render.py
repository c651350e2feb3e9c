"""The scheduler's renderer, without processes or sockets: time is passed in, events are collected."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vtkernel.engine.schema import BUILTIN_TYPES, Event, ModuleType, ParamSpec
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.render import Renderer

LOOKAHEAD = 0.05


class FakeOutputs:
    def __init__(self) -> None:
        self.osc: list[tuple[str, float, Any]] = []  # (module, beat, value)
        self.recorded: list[tuple[str, float, Any]] = []
        self.midi: list[tuple[float, tuple[int, ...]]] = []
        self.reports: list[str] = []
        self._seen: set[tuple[str, str]] = set()
        self.tempo_of: Any = None

    def send_osc(self, module, host, port, address, timetag, args):
        self.osc.append((module, timetag, args[0]))

    def send_midi(self, module, port, at, message):
        self.midi.append((at, tuple(message)))

    def record(self, module: str, event: Event) -> None:
        self.recorded.append((module, event.beat, event.value))

    def report(self, module, key, message):
        if (module, key) not in self._seen:
            self._seen.add((module, key))
            self.reports.append(message)


def doc(modules: dict[str, tuple[str, dict[str, Any]]], connections=(), *, bpm=120.0, playing=True, meter=4):
    return {
        "clock": {"bpm": bpm, "playing": playing, "meter": meter},
        "modules": {name: {"type": t, "params": p} for name, (t, p) in modules.items()},
        "connections": [{"src": s, "dst": d} for s, d in connections],
    }


def renderer(document, extra_types=()) -> tuple[Renderer, FakeOutputs]:
    out = FakeOutputs()
    types = {cls.type_name: cls for cls in (*BUILTIN_TYPES, *extra_types)}
    r = Renderer(types, out, lookahead=LOOKAHEAD, wall=WallClock(1e9))
    r.reset(document, 1, now=0.0)
    return r, out


def run(r: Renderer, until: float, step: float = 0.01) -> None:
    """Advance the clock like the loop would, waking every `step` seconds."""
    t = 0.0
    while t <= until:
        r.advance(t)
        t += step


def beats(out: FakeOutputs) -> list[tuple[float, Any]]:
    return [(b, v) for _, b, v in out.recorded]


SEQ_TO_REC = [("s.out", "r.in")]


def seq_doc(steps, division=4, **kw):
    return doc({"s": ("seq", {"steps": steps, "division": division}), "r": ("recorder", {})}, SEQ_TO_REC, **kw)


def test_play_puts_beat_zero_one_lookahead_from_now_and_renders_one_lookahead_ahead():
    r, out = renderer(seq_doc([1, 2, 3, 4]))
    next_wake = r.advance(0.0)
    assert beats(out) == [(0.0, 1)]  # beat 0.25 sounds at 0.175 s, beyond 0 + lookahead
    assert next_wake == pytest.approx(0.05 + 0.125 - LOOKAHEAD)
    assert r.tempo is not None and r.tempo.time_of(0.0) == LOOKAHEAD


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.001, 0.2), min_size=1, max_size=40))
def test_when_the_loop_wakes_never_changes_what_sounds(gaps):
    r1, out1 = renderer(seq_doc([1, None, 3, 4, None, 6], division=3))
    run(r1, sum(gaps), step=0.001)
    r1.advance(sum(gaps))  # the 1 ms steps add up to a little less than the gaps do: both loops end at one moment
    r2, out2 = renderer(seq_doc([1, None, 3, 4, None, 6], division=3))
    t = 0.0
    for g in gaps:
        r2.advance(t)
        t += g
    r2.advance(t)
    n = len(beats(out2))
    assert beats(out2) == beats(out1)[:n]


def test_an_edit_takes_effect_at_the_horizon_and_keeps_the_phase():
    r, out = renderer(seq_doc([1, 2, 3, 4]))
    run(r, 0.3)
    horizon = r.horizon
    r.apply([({"op": "replace", "path": "/modules/s/params/steps", "value": [10, 20, 30, 40]}, None)], 2, now=0.3)
    run_from(r, 0.3, 1.0)
    new = [(b, v) for b, v in beats(out) if b >= horizon]
    assert new and all(v == 10 * ((round(b * 4) % 4) + 1) for b, v in new)  # the step index comes from the beat


def run_from(r: Renderer, start: float, until: float, step: float = 0.01) -> None:
    t = start
    while t <= until:
        r.advance(t)
        t += step


@pytest.mark.parametrize(("quantize", "boundary"), [("step", 0.75), ("beat", 1.0), ("bar", 4.0)])
def test_a_quantized_edit_waits_for_its_boundary(quantize, boundary):
    r, out = renderer(seq_doc([1], division=4))
    run(r, 0.3)  # horizon is a little past beat 0.5
    assert 0.5 < r.horizon < 0.75
    r.apply([({"op": "replace", "path": "/modules/s/params/steps", "value": [2]}, quantize)], 2, now=0.3)
    assert r.target["modules"]["s"]["params"]["steps"] == [2]  # the engine's copy is current at once
    run_from(r, 0.3, 2.5)
    assert all(v == 1 for b, v in beats(out) if b < boundary)
    assert all(v == 2 for b, v in beats(out) if b >= boundary)
    assert any(b >= boundary for b, _ in beats(out))


def test_a_later_edit_of_the_same_param_replaces_a_pending_one():
    r, out = renderer(seq_doc([1]))
    run(r, 0.3)
    r.apply([({"op": "replace", "path": "/modules/s/params/steps", "value": [2]}, "bar")], 2, now=0.3)
    r.apply([({"op": "replace", "path": "/modules/s/params/steps", "value": [3]}, None)], 3, now=0.3)
    run_from(r, 0.3, 2.5)
    assert not r.pending
    assert {v for b, v in beats(out) if b >= 1.0} == {3}


def test_bpm_changes_the_spacing_from_the_horizon_on():
    r, out = renderer(seq_doc([1], division=1))
    run(r, 1.0)
    horizon = r.horizon
    r.apply([({"op": "replace", "path": "/clock/bpm", "value": 240.0}, None)], 2, now=1.0)
    run_from(r, 1.0, 3.0)
    assert r.tempo is not None
    times = [r.tempo.time_of(b) for b, _ in beats(out) if b >= horizon]
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(times)}
    assert gaps == {0.25}


def test_stop_stops_at_the_horizon_and_stop_at_bar_at_the_bar():
    r, out = renderer(seq_doc([1]))
    run(r, 0.3)
    r.apply([({"op": "replace", "path": "/clock/playing", "value": False}, "bar")], 2, now=0.3)
    run_from(r, 0.3, 3.0)
    assert max(b for b, _ in beats(out)) == 3.75
    assert not r.playing
    r2, out2 = renderer(seq_doc([1]))
    run(r2, 0.3)
    horizon = r2.horizon
    r2.apply([({"op": "replace", "path": "/clock/playing", "value": False}, None)], 2, now=0.3)
    assert r2.advance(0.31) is None
    assert max(b for b, _ in beats(out2)) < horizon


def test_a_control_signal_modulates_a_param_at_each_step():
    d = seq_doc([60, 62])
    d["modules"]["c"] = {"type": "const", "params": {"value": 12.0}}
    d["connections"].append({"src": "c.out", "dst": "s.steps"})
    r, out = renderer(d)
    run(r, 0.5)
    assert [v for _, v in beats(out)] == [72, 74, 72, 74][: len(beats(out))]
    assert len(beats(out)) >= 3


def test_modulation_is_clamped_to_the_params_range():
    d = doc({"a": ("lfo", {"rate": 1.0}), "c": ("const", {"value": -50.0})}, [("c.out", "a.rate")])
    r, _ = renderer(d)
    assert r.params_at("a", 0.0)["rate"] > 0.0  # rate must stay > 0


def test_signal_cycles_are_cut_not_followed():
    d = doc({"a": ("lfo", {}), "b": ("lfo", {})}, [("a.out", "b.rate"), ("b.out", "a.rate")])
    r, _ = renderer(d)
    r.advance(0.0)
    assert isinstance(r.signal_at("a", 1.3), float)


def test_a_control_signal_into_an_event_input_is_sampled_every_sixteenth():
    d = doc({"c": ("const", {"value": 0.5}), "r": ("recorder", {})}, [("c.out", "r.in")])
    r, out = renderer(d)
    run(r, 0.3)
    got = beats(out)
    assert [b for b, _ in got[:3]] == [0.0, 0.0625, 0.125]
    assert {v for _, v in got} == {0.5}


class Double(ModuleType):
    type_name = "double"
    params = {"by": ParamSpec("float", 2.0, "factor")}
    inputs = ("in",)
    outputs = ("out",)

    def process(self, p, beat, value):
        return value * p["by"]


def test_events_flow_through_process_modules_to_sinks():
    d = doc(
        {"s": ("seq", {"steps": [1, 2]}), "x": ("double", {"by": 3.0}), "r": ("recorder", {})},
        [("s.out", "x.in"), ("x.out", "r.in")],
    )
    r, out = renderer(d, [Double])
    run(r, 0.3)
    assert [v for _, v in beats(out)][:2] == [3.0, 6.0]


class Broken(ModuleType):
    type_name = "broken"
    outputs = ("out",)

    def pattern(self, p, start, end):
        raise ZeroDivisionError("oops")


def test_a_module_that_raises_is_muted_and_reported_once_and_the_rest_plays_on():
    d = seq_doc([1])
    d["modules"]["b"] = {"type": "broken", "params": {}}
    d["connections"].append({"src": "b.out", "dst": "r.in"})
    r, out = renderer(d, [Broken])
    run(r, 0.5)
    assert len(out.reports) == 1 and "b: pattern() raised ZeroDivisionError: oops" in out.reports[0]
    assert len(beats(out)) >= 4


def test_hot_swap_changes_behaviour_and_keeps_params():
    d = doc(
        {"s": ("seq", {"steps": [1]}), "x": ("double", {"by": 5.0}), "r": ("recorder", {})},
        [("s.out", "x.in"), ("x.out", "r.in")],
    )
    r, out = renderer(d, [Double])
    run(r, 0.2)

    class Double2(Double):  # the user edits the class in a cell and registers it again
        def process(self, p, beat, value):
            return -value * p["by"]

    Double2.type_name = "double"
    r.set_type(Double2)
    before = len(out.recorded)
    run_from(r, 0.2, 0.6)
    assert {v for _, v in beats(out)[:before]} == {5.0}
    assert {v for _, v in beats(out)[before:]} == {-5.0}


def test_an_unknown_type_is_reported_once():
    d = seq_doc([1])
    d["modules"]["m"] = {"type": "nosuch", "params": {}}
    d["connections"].append({"src": "s.out", "dst": "m.in"})
    r, out = renderer(d)
    run(r, 0.3)
    assert sum("nosuch" in line for line in out.reports) == 1


def test_midi_out_schedules_note_on_and_off_at_exact_times():
    d = doc(
        {"s": ("seq", {"steps": [60], "division": 1}), "m": ("midi_out", {"channel": 2, "length": 0.5})},
        [("s.out", "m.in")],
    )
    r, out = renderer(d)
    r.advance(0.0)
    assert out.midi == [(0.05, (0x91, 60, 100)), (0.05 + 0.25, (0x81, 60, 0))]


def test_euclid_module_plays_its_rhythm():
    d = doc({"e": ("euclid", {"hits": 3, "length": 8, "value": 36.0}), "r": ("recorder", {})}, [("e.out", "r.in")])
    r, out = renderer(d)
    run(r, 1.1)
    assert [b for b, _ in beats(out)][:3] == [0.0, 0.75, 1.5]


def test_an_edit_inside_a_module_whose_arrival_is_quantized_lands_with_it():
    r, out = renderer(seq_doc([1]))
    run(r, 0.3)
    module = {"type": "seq", "params": {"steps": [5], "division": 4}}
    r.apply(
        [
            ({"op": "add", "path": "/modules/t", "value": module}, "bar"),
            (
                {
                    "op": "replace",
                    "path": "/connections",
                    "value": [{"src": "s.out", "dst": "r.in"}, {"src": "t.out", "dst": "r.in"}],
                },
                "bar",
            ),
        ],
        2,
        now=0.3,
    )
    r.apply([({"op": "replace", "path": "/modules/t/params/steps", "value": [7]}, None)], 3, now=0.3)
    assert "t" not in r.live["modules"]
    run_from(r, 0.3, 2.5)
    from_t = [(b, v) for b, v in beats(out) if v != 1]
    assert from_t and from_t[0][0] == 4.0 and {v for _, v in from_t} == {7}


def test_removing_a_module_while_it_plays_removes_it_and_keeps_the_rest_playing():
    # Regression: the removal sentinel was deep-copied into the live patch, and the next
    # telemetry frame crashed the scheduler process.
    document = doc(
        {"s": ("seq", {"steps": [1, 2], "division": 4}), "r": ("recorder", {}), "h": ("euclid", {})},
        [*SEQ_TO_REC, ("h.out", "r.in")],
    )
    r, out = renderer(document)
    run(r, 0.3)
    r.apply([({"op": "remove", "path": "/modules/h"}, None), ({"op": "replace", "path": "/connections", "value": [{"src": "s.out", "dst": "r.in"}]}, None)], 2, now=0.31)
    assert "h" not in r.live["modules"]
    r.values(0.32)  # telemetry reads every live module
    before = len(beats(out))
    run(r, 0.6)
    assert len(beats(out)) > before
