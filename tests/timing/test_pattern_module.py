"""The `pattern` module type: a Tidal/Strudel pattern played on the clock (SPEC §3, §9).

Pure: the renderer gets explicit times and sends to a collecting `Outputs`;
the expected events are computed from the pattern core's own haps.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.timing.test_render import run
from vtkernel.engine.apply import apply_to_document
from vtkernel.engine.document import Document
from vtkernel.engine.pattern_module import PatternModule, beat_to_cycles
from vtkernel.engine.patterns.mini import mini
from vtkernel.engine.patterns.tree import from_json, validate_json
from vtkernel.engine.schema import BUILTIN_TYPES, Event, ModuleType, Params, default_registry
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.render import Renderer
from vtkernel.protocol import AddModule, SetParam, VTError

LOOKAHEAD = 0.05


class Keep:
    """The `Outputs` a sink sees; keeps every recorded event whole."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.reports: list[str] = []

    def send_osc(self, *args: Any) -> None:
        raise AssertionError("no OSC here")

    def send_midi(self, *args: Any) -> None:
        raise AssertionError("no MIDI here")

    def record(self, module: str, event: Event) -> None:
        self.events.append(event)

    def report(self, module: str, key: str, message: str) -> None:
        self.reports.append(message)


class Louder(ModuleType):
    """A process module: events keep their duration, cycle and cps through it."""

    type_name = "louder"
    inputs = ("in",)
    outputs = ("out",)

    def process(self, p: Params, beat: float, value: Any) -> Any:
        return {**value, "gain": 1.5} if isinstance(value, dict) else {"value": value, "gain": 1.5}


def rig(pattern: Any, *, cycle: float = 0.0, bpm: float = 120.0, meter: int = 4, through: bool = False) -> tuple[Renderer, Keep]:
    out = Keep()
    r = Renderer({c.type_name: c for c in (*BUILTIN_TYPES, PatternModule, Louder)}, out, lookahead=LOOKAHEAD, wall=WallClock(1e9))
    modules: dict[str, Any] = {
        "p": {"type": "pattern", "params": {"pattern": validate_json(pattern), "cycle": cycle}},
        "r": {"type": "recorder", "params": {}},
    }
    conns = [{"src": "p.out", "dst": "r.in"}]
    if through:
        modules["l"] = {"type": "louder", "params": {}}
        conns = [{"src": "p.out", "dst": "l.in"}, {"src": "l.out", "dst": "r.in"}]
    r.reset({"clock": {"bpm": bpm, "playing": True, "meter": meter}, "modules": modules, "connections": conns}, 1, now=0.0)
    return r, out


def expected(text: str, cycles: int, bpc: float) -> list[tuple[float, Any, float]]:
    """(beat, value, duration in beats) of every onset in the first `cycles` cycles, from the core's haps."""
    out = []
    for hap in mini(text).query(0, cycles):
        if hap.whole is not None and hap.has_onset():
            b = Fraction(bpc)
            out.append((float(hap.whole.begin * b), hap.value, float((hap.whole.end - hap.whole.begin) * b)))
    return sorted(out, key=lambda e: e[0])


def seen(out: Keep) -> list[tuple[float, Any, float]]:
    return [(e.beat, e.value, e.duration) for e in out.events]


def test_one_event_per_hap_onset_with_its_value_and_duration():
    text = "bd*2 [~ sd] <cp hh:3>"
    r, out = rig(text)
    run(r, 4 * 2.0 - 0.01)  # 120 bpm, one 4-beat bar per cycle: 4 cycles in 8 s
    got = [e for e in seen(out) if e[0] < 16]
    assert got == expected(text, 4, 4.0)
    assert len(got) == 4 * 4


def test_cycle_and_cps_come_from_the_meter_by_default_and_from_the_cycle_param():
    r, out = rig("a b", meter=3)
    run(r, 3.0)
    first = [e for e in out.events if e.beat < 6]
    assert [(e.beat, e.cycle) for e in first] == [(0.0, 0.0), (1.5, 0.5), (3.0, 1.0), (4.5, 1.5)]
    assert all(e.cps == pytest.approx(120 / 60 / 3) and e.duration == 1.5 for e in first)
    r, out = rig("a b", cycle=2.0)
    run(r, 2.0)
    first = [e for e in out.events if e.beat < 4]
    assert [(e.beat, e.cycle) for e in first] == [(0.0, 0.0), (1.0, 0.5), (2.0, 1.0), (3.0, 1.5)]
    assert all(e.cps == pytest.approx(1.0) and e.duration == 1.0 for e in first)


def test_duration_cycle_and_cps_go_through_process_modules():
    r, out = rig("c3 [e3 g3]", through=True)
    run(r, 2.0)
    assert [(e.beat, e.value, e.duration, e.cycle) for e in out.events if e.beat < 4] == [
        (0.0, {"value": "c3", "gain": 1.5}, 2.0, 0.0),
        (2.0, {"value": "e3", "gain": 1.5}, 1.0, 0.5),
        (3.0, {"value": "g3", "gain": 1.5}, 1.0, 0.75),
    ]


@settings(max_examples=60, deadline=None)
@given(
    text=st.sampled_from(["bd*3 sd", "a [b c]/3 <d e f>", "{a b c}%4", "a(3,8,<0 2>)", "[a b]*1.5 c?", "a . b c . [d e]*5"]),
    cuts=st.lists(st.floats(min_value=0.0, max_value=12.0, allow_nan=False), max_size=25),
    bpc=st.sampled_from([4.0, 3.0, 1.7, 0.6]),
)
def test_any_windows_render_the_same_events_as_one_big_window(text: str, cuts: list[float], bpc: float):
    """Consecutive windows share their edge exactly: no onset is lost or doubled, whatever the windows."""
    p = {"pattern": validate_json(text), "cycle": bpc}
    whole = PatternModule()
    big = list(whole.pattern(p, 0.0, 12.0))
    edges = [0.0, *sorted(cuts), 12.0]
    pieces = PatternModule()
    small = [(a, b, onset) for a, b in itertools.pairwise(edges) for onset in pieces.pattern(p, a, b)]
    assert [(v, d) for _, _, (_, v, d) in small] == [(v, d) for _, v, d in big]
    # Each onset inside its own window; its beat moved by at most the 2**-32 beat rounding of the edges.
    assert all(a <= beat < b for a, b, (beat, _, _) in small)
    assert [beat for _, _, (beat, _, _) in small] == pytest.approx([beat for beat, _, _ in big], abs=1e-9)
    assert all(0.0 <= onset[0] < 12.0 for onset in big)


def test_window_edges_become_the_same_fraction_from_both_sides():
    bpc = Fraction(4)
    for beat in (0.1, 1 / 3, 2.9999999999, 7.25, 1e-9):
        assert beat_to_cycles(beat, bpc) == beat_to_cycles(beat, bpc)
        assert beat_to_cycles(beat, bpc) <= beat_to_cycles(beat + 1e-6, bpc)
    assert beat_to_cycles(8.0, bpc) == 2


def test_the_built_pattern_is_cached_per_param_value():
    m = PatternModule()
    value = validate_json("a b c")
    p = {"pattern": value, "cycle": 0.0}
    list(m.pattern(p, 0.0, 1.0))
    built = m._built
    list(m.pattern(p, 1.0, 2.0))
    assert m._built is built  # the same param value: not parsed again
    list(m.pattern({"pattern": validate_json("a b"), "cycle": 0.0}, 2.0, 3.0))
    assert m._built is not built
    other = PatternModule()
    list(other.pattern({"pattern": validate_json("a b c"), "cycle": 0.0}, 0.0, 1.0))
    assert other._built is built  # another module playing the same pattern shares the built one


def test_each_block_of_the_pattern_is_queried_once_whatever_the_windows():
    m = PatternModule()
    p = {"pattern": validate_json("a*8"), "cycle": 0.0}
    calls: list[tuple[Fraction, Fraction]] = []
    real = m.built(p["pattern"])

    class Counting:
        def query(self, b: Fraction, e: Fraction) -> Any:
            calls.append((b, e))
            return real.query(b, e)

    m._built = Counting()
    onsets = []
    for k in range(800):  # two cycles, in 1/100-beat windows plus a 4-beat look-ahead each time
        onsets.extend(m.pattern(p, k / 100, (k + 1) / 100))
        next(iter(m.pattern(p, (k + 1) / 100, (k + 1) / 100 + 4)), None)
    assert [beat for beat, _, _ in onsets] == [k / 2 for k in range(16)]
    assert sorted(set(calls)) == sorted(calls)  # no block queried twice
    assert len(calls) <= 2 * 4 + 2


def test_a_replaced_pattern_keeps_the_phase_and_waits_for_the_bar_when_quantized():
    r, out = rig("<a b c d>")  # one value per cycle (bar): the value says which cycle it is
    run(r, 1.0)  # into the first bar
    new = validate_json("<w x y z>")
    r.apply([({"op": "replace", "path": "/modules/p/params/pattern", "value": new}, "bar")], 2, 1.0)
    t = 1.0
    while t < 8.0:
        r.advance(t)
        t += 0.01
    values = [(e.beat, e.value) for e in out.events if e.beat < 16]
    # Bar 0 still plays the old pattern; from bar 1 on, the new one at its own cycle index.
    assert values == [(0.0, "a"), (4.0, "x"), (8.0, "y"), (12.0, "z")]


def test_a_bad_pattern_is_invalid_value_in_one_line_and_nothing_changes():
    reg = default_registry()
    doc, _ = apply_to_document(Document(), AddModule(name="p", type="pattern", params={"pattern": "bd sd"}), reg)
    for bad in ("bd [sd", "a(3,8", {"not": "a pattern"}, object()):
        with pytest.raises(VTError) as err:
            apply_to_document(doc, SetParam(module="p", param="pattern", value=bad), reg)
        assert err.value.code == "invalid_value"
        assert "\n" not in str(err.value) and str(err.value).startswith("invalid_value: p.pattern")
    assert doc.modules["p"].params["pattern"] == validate_json("bd sd")


def test_the_stored_form_is_json_and_rebuilds_the_same_pattern():
    value = validate_json("bd*2 [~ sd]")
    assert json.loads(json.dumps(value)) == value
    assert [(h.whole, h.value) for h in from_json(value).query(0, 2)] == [(h.whole, h.value) for h in mini("bd*2 [~ sd]").query(0, 2)]


def test_the_cycle_param_is_zero_for_the_meter_and_never_negative():
    reg = default_registry()
    doc, _ = apply_to_document(Document(), AddModule(name="p", type="pattern"), reg)
    assert doc.modules["p"].params["cycle"] == 0.0
    with pytest.raises(VTError):
        apply_to_document(doc, SetParam(module="p", param="cycle", value=-1), reg)


def test_a_control_pattern_built_in_python_is_stored_as_json_and_plays_mappings():
    from vtkernel.patterns import s

    built = s("bd*2 [~ sd]").n("<0 3>")
    reg = default_registry()
    doc, _ = apply_to_document(Document(), AddModule(name="p", type="pattern", params={"pattern": built}), reg)
    stored = doc.modules["p"].params["pattern"]
    assert json.loads(json.dumps(stored)) == stored  # data, not a closure
    r, out = rig(stored)
    run(r, 4.0 - 0.01)  # two 4-beat cycles at 120 bpm
    assert [(e.beat, e.value, e.duration) for e in out.events if e.beat < 8] == [
        (0.0, {"s": "bd", "n": 0}, 1.0),
        (1.0, {"s": "bd", "n": 0}, 1.0),
        (3.0, {"s": "sd", "n": 0}, 1.0),
        (4.0, {"s": "bd", "n": 3}, 1.0),
        (5.0, {"s": "bd", "n": 3}, 1.0),
        (7.0, {"s": "sd", "n": 3}, 1.0),
    ]


def test_strudel_code_typed_as_mini_notation_says_where_such_patterns_are_built() -> None:
    """`%vt add d3 pattern pattern=s("bd*2")`: the parse error alone did not say what went wrong."""
    from vtkernel.engine.schema import default_registry
    from vtkernel.protocol import VTError

    spec = default_registry().get("pattern").params["pattern"]
    with pytest.raises(VTError) as info:
        spec.validate("d3", "pattern", 's("bd*2")')
    assert info.value.code == "invalid_value" and "\n" not in info.value.message
    assert "build s(...), n(...) patterns in a cell" in info.value.message


def test_a_parse_error_in_a_cell_shows_as_one_line_not_a_traceback() -> None:
    from vtkernel.engine.patterns.mini import MiniError, mini

    with pytest.raises(MiniError) as info:
        mini("bd <sd")
    assert info.value._render_traceback_() == [f"MiniError: {info.value}"]  # IPython shows this, not 20 lines
