"""Pictures of the patch and of recorded events: well-formed SVG that says what it shows."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from vtkernel.engine import Engine
from vtkernel.engine.schema import default_registry
from vtkernel.pictures import patch_svg, timeline_svg
from vtkernel.protocol import parse_command

SVG = "{http://www.w3.org/2000/svg}"


def texts(svg: str) -> list[str]:
    return ["".join(el.itertext()) for el in ET.fromstring(svg).iter(f"{SVG}text")]


def test_patch_svg_draws_each_module_its_ports_and_each_connection():
    engine = Engine().start()
    try:
        for data in (
            {"op": "add_module", "name": "seq1", "type": "seq", "params": {"steps": "60 ~ 62"}},
            {"op": "add_module", "name": "lfo1", "type": "lfo"},
            {"op": "add_module", "name": "osc1", "type": "osc_out"},
            {"op": "connect", "src": "seq1.out", "dst": "osc1.in"},
            {"op": "connect", "src": "lfo1.out", "dst": "seq1.steps"},
        ):
            assert engine.call(parse_command(data)).error is None
        svg = patch_svg(engine.snapshot, engine.registry)
    finally:
        engine.stop()
    root = ET.fromstring(svg)
    words = texts(svg)
    assert {"seq1", "lfo1", "osc1", "seq", "lfo", "osc_out"} <= set(words)
    assert "steps 60 ~ 62" in words and "in" in words and "out" in words
    titles = {"".join(t.itertext()) for t in root.iter(f"{SVG}title")}
    assert {"seq1.out → osc1.in", "lfo1.out → seq1.steps"} <= titles
    dashed = [p for p in root.iter(f"{SVG}path") if p.get("stroke-dasharray")]
    assert len(dashed) == 1  # the control signal (modulation) is dashed, the event edge is not


def test_patch_svg_follows_the_theme_and_escapes_text():
    doc = {"modules": {"o": {"type": "osc_out", "params": {"address": "/a<b>&"}}}, "connections": []}
    svg = patch_svg(doc, default_registry())
    ET.fromstring(svg)
    assert "currentColor" in svg and "/a<b>&" not in svg


def test_empty_patch_and_empty_timeline_say_so():
    assert "empty patch" in patch_svg({"modules": {}, "connections": []}, default_registry())
    assert "no events recorded" in timeline_svg([])


def test_timeline_svg_plots_each_event_at_its_beat():
    events = [(0.0, b / 4, 60 + b) for b in range(8)]
    svg = timeline_svg({"rec": events, "other": [(0.0, 1.0, 1.5)]})
    root = ET.fromstring(svg)
    dots = list(root.iter(f"{SVG}circle"))
    assert len(dots) == 9 + 2  # the events, plus two legend dots
    assert "rec beat 0.25: 61" in {"".join(t.itertext()) for t in root.iter(f"{SVG}title")}
