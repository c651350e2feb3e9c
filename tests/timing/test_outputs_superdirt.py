"""`superdirt`: `/dirt/play` bundles over real UDP, parsed with python-osc, checked field by field.

The expected messages are computed here, independently, from the rules
Tidal and Strudel follow (docs/outputs.md cites their source): `cps` from
the tempo and the cycle length, `cycle` = the hap's whole begin, `delta` =
the whole's duration in seconds, `orbit` 0 unless given, name/value pairs
sorted by name, numbers as floats except Tidal's int params.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from tests.timing.test_outputs_osc import Live, wait_for
from vtkernel.engine.schema import ModuleType, Params, ParamSpec
from vtkernel.engine.timing.clock import NTP_UNITS
from vtkernel.testing.osc import OscReceiver, Received


@pytest.fixture
def rx():
    with OscReceiver() as receiver:
        yield receiver


class Table(ModuleType):
    """Turns step k of a seq into the k-th mapping of its `table` param (JSON text)."""

    type_name = "table"
    params = {"table": ParamSpec("string", "[]")}
    inputs = ("in",)
    outputs = ("out",)

    def process(self, p: Params, beat: float, value: Any) -> Any:
        v = json.loads(p["table"])[int(value)]
        return [v] if isinstance(v, list) else v  # a list result would be several events


def play(rx: OscReceiver, table: list[Any], *, bpm: float = 120.0, division: int = 1, dirt: dict[str, Any] | None = None) -> tuple[list[Received], Live]:
    live = Live(
        {
            "drums": ("seq", {"steps": list(range(len(table))), "division": division}),
            "t": ("table", {"table": json.dumps(table)}),
            "d": ("superdirt", {"port": rx.port, **(dirt or {})}),
        },
        [("drums.out", "t.in"), ("t.out", "d.in")],
        bpm=bpm,
    )
    live.r.set_type(Table)
    try:
        live.render(len(table) / division * 60.0 / bpm)
        got = wait_for(rx, len(table))
    finally:
        live.close()
    return sorted(got, key=lambda r: r.timetag or 0), live


def pairs(r: Received) -> dict[str, Any]:
    assert r.address == "/dirt/play"
    names = r.args[0::2]
    assert list(names) == sorted(names), "Tidal sends the pairs sorted by name"
    return dict(zip(names, r.args[1::2], strict=True))


def test_dirt_play_carries_cps_cycle_delta_orbit_and_every_field_with_tidals_types(rx: OscReceiver):
    bpm, division = 120.0, 2  # a seq cycle is one bar: 4 beats; steps last half a beat
    table = [{"s": "bd", "gain": 0.9}, {"s": "sd", "n": 3, "cut": 1}, {"s": "hh", "orbit": 2, "pan": 0}, {"s": "cp", "speed": -1}]
    got, live = play(rx, table, bpm=bpm, division=division)
    cps = bpm / 60 / 4
    spb = 60 / bpm
    for k, r in enumerate(got):
        beat = k / division
        expected: dict[str, Any] = {"_id_": "t", "cps": cps, "cycle": beat / 4, "delta": spb / division, "orbit": 0}
        expected.update({name: (float(v) if name not in ("cut", "orbit") and not isinstance(v, str) else v) for name, v in table[k].items()})
        fields = pairs(r)
        assert fields == pytest.approx(expected)
        for name, v in fields.items():
            want = type(expected[name])
            assert type(v) is want, f"{name}: {type(v).__name__}, Tidal sends {want.__name__}"
    # Timetags: exactly on the beat grid, anchored where the renderer put beat 0.
    tempo = live.r.tempo
    assert tempo is not None
    assert [r.timetag for r in got] == [tempo.timetag_of(k / division) for k in range(len(table))]
    step_units = round(spb / division * NTP_UNITS)
    assert all(abs((b.timetag or 0) - (a.timetag or 0) - step_units) <= 1 for a, b in itertools.pairwise(got))


def test_strudel_and_tidal_rewrites_bd_colon_n_note_names_bank_and_roomsize(rx: OscReceiver):
    table = [
        {"s": "bd:3"},  # Tidal's `sound` grp / Strudel's s: s "bd", n 3
        {"s": "superpiano", "note": "c4"},  # a note name adds midinote (Strudel)
        {"s": "superpiano", "n": "eb3"},  # n as a note name becomes its number (Strudel parseNumeral)
        {"s": "bd", "bank": "tr909", "roomsize": 0.5, "channels": [1, 2]},
        "sn:2",  # a bare word is `s`
        ["arpy", 5, 0.8],  # a list is Strudel's [s, n, gain]
    ]
    got, _ = play(rx, table)
    f = [pairs(r) for r in got]
    assert (f[0]["s"], f[0]["n"]) == ("bd", 3.0) and isinstance(f[0]["n"], float)
    assert (f[1]["note"], f[1]["midinote"]) == ("c4", 60.0)
    assert f[2]["n"] == 51.0
    assert (f[3]["s"], f[3]["bank"], f[3]["size"], f[3]["roomsize"], f[3]["channels"]) == ("tr909bd", "tr909", 0.5, 0.5, "[1, 2]")
    assert (f[4]["s"], f[4]["n"]) == ("sn", 2.0)
    assert (f[5]["s"], f[5]["n"], f[5]["gain"]) == ("arpy", 5.0, pytest.approx(0.8))


def test_the_events_own_cps_orbit_and_id_win_and_nudge_moves_the_timetag(rx: OscReceiver):
    table = [{"s": "bd", "orbit": 3, "cps": 0.75, "_id_": "d1", "nudge": 0.01}, {"s": "bd"}]
    got, live = play(rx, table, dirt={"orbit": 5})
    a, b = pairs(got[0]), pairs(got[1])
    assert (a["orbit"], a["cps"], a["_id_"], a["nudge"]) == (3, 0.75, "d1", pytest.approx(0.01))
    assert (b["orbit"], b["cps"], b["_id_"]) == (5, 0.5, "t")  # the sink's orbit param; 120 bpm / 4 beats
    tempo = live.r.tempo
    assert tempo is not None
    assert got[0].timetag == tempo.timetag_of(0.0) + round(0.01 * NTP_UNITS)
    assert got[1].timetag == tempo.timetag_of(1.0)


def test_an_event_without_a_sound_name_is_reported_once_and_not_sent(rx: OscReceiver):
    live = Live(
        {"s": ("seq", {"steps": [60, 62], "division": 4}), "d": ("superdirt", {"port": rx.port})},
        [("s.out", "d.in")],
    )
    try:
        live.render(1.0)
        assert live.r.counters.events >= 16
    finally:
        live.close()
    assert rx.received == []
    lines = [line for line in live.out.reports if "SuperDirt needs a sound name" in line]
    assert len(lines) == 1 and "\n" not in lines[0]


def test_cps_and_cycle_follow_the_meter_of_the_clock(rx: OscReceiver):
    live = Live(
        {"s": ("seq", {"steps": [0], "division": 1}), "d": ("superdirt", {"port": rx.port})},
        [("s.out", "d.in")],
        bpm=90.0,
        meter=3,
    )
    live.r.live["modules"]["s"]["params"]["steps"] = ["bd"]  # words are sound names
    live.r._base.clear()
    try:
        live.render(4 * 60 / 90)
        got = sorted(wait_for(rx, 4), key=lambda r: r.timetag or 0)
    finally:
        live.close()
    for k, r in enumerate(got):
        f = pairs(r)
        assert f["cps"] == pytest.approx(90 / 60 / 3)
        assert f["cycle"] == pytest.approx(k / 3)
        assert f["delta"] == pytest.approx(60 / 90)


def test_a_control_pattern_sends_what_tidal_would_for_its_haps(rx: OscReceiver):
    """cps from the tempo and the cycle length, cycle = whole begin, delta = whole duration in seconds."""
    from vtkernel.engine.patterns.tree import validate_json
    from vtkernel.patterns import s

    built = s("bd*2 [~ sd:3] <hh cp>").gain("0.8 1").orbit(1)
    bpm, bpc = 150.0, 3.0  # a cycle of 3 beats: 1.2 s
    cycle_seconds = bpc * 60 / bpm
    live = Live(
        {
            "drums": ("pattern", {"pattern": validate_json(built), "cycle": bpc}),
            "d": ("superdirt", {"port": rx.port}),
        },
        [("drums.out", "d.in")],
        bpm=bpm,
    )
    cycles = 4
    haps = sorted(
        (h for h in built.query(0, cycles) if h.whole is not None and h.has_onset()),
        key=lambda h: (h.whole.begin, str(h.value)),
    )
    try:
        live.render(cycles * cycle_seconds)
        got = wait_for(rx, len(haps))
        tempo = live.r.tempo
        assert tempo is not None
        tag0 = tempo.timetag_of(0.0)
    finally:
        live.close()
    assert len(got) == len(haps) == cycles * 4  # bd bd sd, and hh or cp
    got.sort(key=lambda r: (r.timetag or 0, str(pairs(r).get("s"))))
    for hap, r in zip(haps, got, strict=True):
        value = dict(hap.value)
        expected: dict[str, Any] = {
            "_id_": "drums",
            "cps": bpm / 60 / bpc,
            "cycle": float(hap.whole.begin),
            "delta": float(hap.whole.end - hap.whole.begin) * cycle_seconds,
            **{k: (v if isinstance(v, str) or k == "orbit" else float(v)) for k, v in value.items()},
        }
        assert pairs(r) == pytest.approx(expected)
        assert type(pairs(r)["orbit"]) is int and type(pairs(r).get("n", 0.0)) is float
        want_tag = tag0 + round(float(hap.whole.begin) * cycle_seconds * NTP_UNITS)
        assert abs((r.timetag or 0) - want_tag) <= 1
