"""`osc_out` for any receiver: address templates, argument layouts and OSC types, over real UDP (SPEC §3).

The renderer and `SchedulerOutputs` run in this process with real sockets;
`OscReceiver` parses each datagram with python-osc. Time is passed to the
renderer, so every test renders an exact stretch of the timeline and then
waits for the bundles it must receive.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.timing.conftest import grid_errors_us
from vtkernel.engine.apply import apply_to_document
from vtkernel.engine.document import Document
from vtkernel.engine.schema import BUILTIN_TYPES, ModuleType, Params, ParamSpec, default_registry
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.outputs import SchedulerOutputs
from vtkernel.engine.timing.render import Renderer
from vtkernel.protocol import SetParam, VTError
from vtkernel.testing.osc import OscReceiver

LOOKAHEAD = 0.05


class ToFields(ModuleType):
    """A process module that turns a step number into a mapping, as a control pattern would."""

    type_name = "tofields"
    params = {"s": ParamSpec("string", "bd")}
    inputs = ("in",)
    outputs = ("out",)

    def process(self, p: Params, beat: float, value: Any) -> Any:
        k = int(value)
        fields: dict[str, Any] = {"s": p["s"], "n": k, "freq": 110.0 * (k + 1), "gain": 0.5}
        if k % 2:
            fields["flag"] = True
        return fields


class Live:
    """A renderer on a real `SchedulerOutputs` (real UDP sockets), driven by explicit times."""

    def __init__(
        self,
        modules: dict[str, tuple[str, dict[str, Any]]],
        connections: list[tuple[str, str]],
        bpm: float = 240.0,
        meter: int = 4,
    ):
        self.wall = WallClock.now()
        self.out = SchedulerOutputs(self.wall)
        types = {cls.type_name: cls for cls in (*BUILTIN_TYPES, ToFields)}
        self.r = Renderer(types, self.out, lookahead=LOOKAHEAD, wall=self.wall)
        self.t0 = time.monotonic()
        doc = {
            "clock": {"bpm": bpm, "playing": True, "meter": meter},
            "modules": {name: {"type": t, "params": p} for name, (t, p) in modules.items()},
            "connections": [{"src": s, "dst": d} for s, d in connections],
        }
        self.r.reset(doc, 1, self.t0)

    def render(self, seconds: float) -> None:
        """Render the first `seconds` of the timeline from beat 0 (in slices, as the loop would)."""
        end = self.t0 + seconds - 0.001  # beat 0 is one lookahead from t0; a render reaches one lookahead ahead
        t = self.t0
        while t < end:
            t = min(t + 0.25, end)
            self.r.advance(t)

    def close(self) -> None:
        self.out.close()


@pytest.fixture
def rx():
    with OscReceiver() as receiver:
        yield receiver


def wait_for(rx: OscReceiver, count: int) -> list[Any]:
    got = rx.wait_for(count, timeout=5)
    assert len(got) >= count, f"received {len(got)} of {count}"
    assert not rx.errors
    return got


def steps_to(osc_params: dict[str, Any], port: int, *, through_fields: bool = True) -> Live:
    modules: dict[str, tuple[str, dict[str, Any]]] = {
        "s": ("seq", {"steps": [0, 1, 2, 3], "division": 4}),
        "o": ("osc_out", {"port": port, **osc_params}),
    }
    if through_fields:
        modules["f"] = ("tofields", {"s": "bd"})
        return Live(modules, [("s.out", "f.in"), ("f.out", "o.in")])
    return Live(modules, [("s.out", "o.in")])


def test_an_address_template_and_name_value_layout_send_typed_fields_on_the_exact_grid(rx: OscReceiver):
    live = steps_to({"address": "/{s}/play", "args": ["freq", "{freq}", "n", "{n}", "amp", 0.2, "label", "v{n}"]}, rx.port)
    try:
        live.render(1.0)  # 240 bpm, 4 steps per beat: 16 events
        got = wait_for(rx, 16)
    finally:
        live.close()
    got.sort(key=lambda r: r.timetag)
    for k, r in enumerate(got):
        n = k % 4
        assert r.address == "/bd/play"
        assert r.args[0::2] == ("freq", "n", "amp", "label")
        freq, n_arg, amp, label = r.args[1::2]
        assert isinstance(freq, float) and freq == 110.0 * (n + 1)  # a float field goes as f
        assert isinstance(n_arg, int) and not isinstance(n_arg, bool) and n_arg == n  # an int field as i
        assert isinstance(amp, float) and amp == pytest.approx(0.2)  # float32 on the wire
        assert label == f"v{n}"  # placeholders inside text are filled in as text
    errors, ks = grid_errors_us(got, 1 / 16)
    assert ks == list(range(16))
    assert max(errors) < 1.0


def test_the_default_layout_sends_every_field_as_name_value_pairs(rx: OscReceiver):
    live = steps_to({"address": "/fields"}, rx.port)
    try:
        live.render(0.25)
        got = wait_for(rx, 4)
    finally:
        live.close()
    got.sort(key=lambda r: r.timetag)
    assert [r.args for r in got] == [
        ("s", "bd", "n", 0, "freq", 110.0, "gain", 0.5),
        ("s", "bd", "n", 1, "freq", 220.0, "gain", 0.5, "flag", 1),  # a bool goes as an int 1/0
        ("s", "bd", "n", 2, "freq", 330.0, "gain", 0.5),
        ("s", "bd", "n", 3, "freq", 440.0, "gain", 0.5, "flag", 1),
    ]


def test_plain_number_events_keep_the_old_layout(rx: OscReceiver):
    live = steps_to({}, rx.port, through_fields=False)
    try:
        live.render(0.25)
        got = wait_for(rx, 4)
    finally:
        live.close()
    assert sorted((r.address, r.args) for r in got) == [("/vt", (v,)) for v in (0, 1, 2, 3)]


def test_an_address_field_in_the_event_overrides_the_param(rx: OscReceiver):
    class Routed(ToFields):
        type_name = "routed"

        def process(self, p: Params, beat: float, value: Any) -> Any:
            return {"address": f"/voice/{int(value)}", "x": float(value)}

    live = Live(
        {
            "s": ("seq", {"steps": [0, 1], "division": 4}),
            "f": ("routed", {}),
            "o": ("osc_out", {"port": rx.port, "address": "/ignored"}),
        },
        [("s.out", "f.in"), ("f.out", "o.in")],
    )
    live.r.set_type(Routed)
    try:
        live.render(0.25)
        got = wait_for(rx, 4)
    finally:
        live.close()
    assert sorted((r.address, r.args) for r in got) == [("/voice/0", ("x", 0.0))] * 2 + [("/voice/1", ("x", 1.0))] * 2


def test_event_time_fields_can_be_named_in_args(rx: OscReceiver):
    live = steps_to({"address": "/t", "args": ["{beat}", "{cycle}", "{cps}", "{delta}"]}, rx.port)
    try:
        live.render(0.5)
        got = wait_for(rx, 8)
    finally:
        live.close()
    got.sort(key=lambda r: r.timetag)
    for k, r in enumerate(got):
        beat = k / 4
        # seq: the cycle is one bar of 4 beats; 240 bpm is 1 cycle per second; a step lasts 1/16 s.
        assert r.args == pytest.approx((beat, beat / 4, 1.0, 1 / 16), abs=1e-6)


def test_bytes_lists_and_big_ints_get_their_own_osc_types(rx: OscReceiver):
    class Odd(ToFields):
        type_name = "odd"

        def process(self, p: Params, beat: float, value: Any) -> Any:
            return {"blob": b"\x00\x01", "xs": [1, 2.5, "w"], "big": 1 << 40}

    live = Live(
        {
            "s": ("seq", {"steps": [0], "division": 1}),
            "f": ("odd", {}),
            "o": ("osc_out", {"port": rx.port, "address": "/odd", "args": ["{blob}", "{xs}", "{big}"]}),
        },
        [("s.out", "f.in"), ("f.out", "o.in")],
    )
    live.r.set_type(Odd)
    try:
        live.render(0.1)
        got = wait_for(rx, 1)
    finally:
        live.close()
    assert got[0].args == (b"\x00\x01", 1, 2.5, "w", 1 << 40)


def test_a_missing_field_is_reported_once_and_other_events_still_go(rx: OscReceiver):
    live = steps_to({"address": "/x", "args": ["{flag}"]}, rx.port)  # only odd steps have `flag`
    try:
        live.render(1.0)
        got = wait_for(rx, 8)
    finally:
        live.close()
    assert [line for line in live.out.reports if "flag" in line] == [
        "o: an event has no field 'flag' (named by the address or args); such events are not sent"
    ]
    assert len(got) == 8 and all(r.args == (1,) for r in got)


def test_an_address_filled_with_a_bad_value_is_reported_and_not_sent(rx: OscReceiver):
    live = steps_to({"address": "/{s}"}, rx.port)
    live.r.live["modules"]["f"]["params"]["s"] = "a b"  # a space: not an OSC address
    live.r._base.clear()
    try:
        live.render(0.5)
        assert live.r.counters.events >= 8
    finally:
        live.close()
    assert any("'/a b' is not an OSC address" in line for line in live.out.reports)


@pytest.mark.parametrize("address", ["/a\x00b", "/a\x7fb", "/a b", "/é", "vt", "/a#b", "/a*", "/{1x}", "/{s"])
def test_osc_addresses_must_be_printable_ascii_without_pattern_characters(address: str):
    reg = default_registry()
    doc = Document()
    doc, _ = apply_to_document(doc, _add("o", "osc_out"), reg)
    with pytest.raises(VTError) as err:
        apply_to_document(doc, SetParam(module="o", param="address", value=address), reg)
    assert err.value.code == "invalid_value"
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("address", ["/vt", "/", "/a/b-c_d.e~f", "/{s}", "/voice/{n}/on", "/!$%&'()+-.:;<=>@^_`|~"])
def test_good_addresses_and_templates_are_accepted(address: str):
    reg = default_registry()
    doc, _ = apply_to_document(Document(), _add("o", "osc_out"), reg)
    doc, _ = apply_to_document(doc, SetParam(module="o", param="address", value=address), reg)
    assert doc.modules["o"].params["address"] == address


def test_args_accept_a_list_or_words_and_reject_nested_values():
    reg = default_registry()
    doc, _ = apply_to_document(Document(), _add("o", "osc_out"), reg)
    doc, _ = apply_to_document(doc, SetParam(module="o", param="args", value="freq {freq} amp 0.2 n 3"), reg)
    assert doc.modules["o"].params["args"] == ("freq", "{freq}", "amp", 0.2, "n", 3)
    for bad in ([["nested"]], [{"a": 1}], [float("nan")], 3):
        with pytest.raises(VTError) as err:
            apply_to_document(doc, SetParam(module="o", param="args", value=bad), reg)
        assert err.value.code == "invalid_value"


def test_each_event_is_a_bundle_at_the_renderers_timetag_for_its_beat(rx: OscReceiver):
    live = steps_to({"address": "/b"}, rx.port)
    try:
        live.render(0.25)
        got = wait_for(rx, 4)
        tempo = live.r.tempo
        assert tempo is not None
        expected = sorted(tempo.timetag_of(k / 4) for k in range(4))
    finally:
        live.close()
    assert sorted(r.timetag for r in got) == expected


def _add(name: str, type_: str, **params: Any) -> Any:
    from vtkernel.protocol import AddModule

    return AddModule(name=name, type=type_, params=params or None)


def test_a_string_with_a_nul_is_reported_and_not_sent(rx: OscReceiver):
    class Nul(ToFields):
        type_name = "nul"

        def process(self, p: Params, beat: float, value: Any) -> Any:
            return {"s": "bd\x00sd" if int(value) == 0 else "hh"}

    live = Live(
        {
            "s": ("seq", {"steps": [0, 1], "division": 4}),
            "f": ("nul", {}),
            "o": ("osc_out", {"port": rx.port, "address": "/x"}),
            "d": ("superdirt", {"port": rx.port}),
        },
        [("s.out", "f.in"), ("f.out", "o.in"), ("f.out", "d.in")],
    )
    live.r.set_type(Nul)
    try:
        live.render(0.5)
        got = wait_for(rx, 8)  # 8 steps, 4 of them hh, to both outputs
    finally:
        live.close()
    assert all("hh" in r.args for r in got) and len(got) == 8
    assert [line for line in live.out.reports if "NUL" in line] == [
        "o: an OSC string cannot hold a NUL character; such events are not sent",
        "d: an OSC string cannot hold a NUL character; such events are not sent",
    ]
