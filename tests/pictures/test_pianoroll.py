"""The piano roll and `Picture`: pure drawing, checked by parsing the SVG it makes."""

from __future__ import annotations

import importlib.util
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from vtkernel.engine import Engine
from vtkernel.engine.schema import default_registry
from vtkernel.pictures import Picture, module_haps, patch_svg, pianoroll, pianoroll_svg, timeline_svg
from vtkernel.pictures.pianoroll import Hap, haps_of, midi_name, note_to_midi, row_of
from vtkernel.protocol import parse_command

SVG = "{http://www.w3.org/2000/svg}"


def blocks(svg: str) -> list[ET.Element]:
    """The hap blocks (row stripes and the frame are rects too)."""
    return [r for r in ET.fromstring(svg).iter(f"{SVG}rect") if r.get("data-vt-hap") is not None]


def row_labels(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end" and t.get("y") != root.get("height")]


def test_note_names_are_strudels():
    assert note_to_midi("c4") == 60
    assert note_to_midi("eb3") == 51
    assert note_to_midi("f#5") == 78
    assert note_to_midi("a") == 57  # octave 3 when omitted, as in Strudel
    assert note_to_midi("bd") is None
    assert midi_name(60) == "C4" and midi_name(61) == "C#4"


def test_rows_follow_strudels_rule_for_values():
    assert row_of(60) == (60.0, "")
    assert row_of("c4") == (60.0, "")
    assert row_of({"note": "a4"}) == (69.0, "")
    assert row_of({"n": 3}) == (3.0, "")
    assert row_of({"s": "bd", "n": 3}) == (None, "bd:3")  # with a sound, n picks a sample: a named row
    assert row_of({"freq": 440}) == (69.0, "")
    assert row_of("bd") == (None, "bd")
    assert row_of(["bd", 3]) == (None, "bd:3")


def test_blocks_sit_at_their_time_and_rows_are_folded_to_what_plays():
    haps = [(0, 0.25, 60), (0.25, 0.5, 64), (0.5, 1.0, 60), (1.0, 1.5, 72)]
    svg = pianoroll_svg(haps, 0, 2, width=400)
    root = ET.fromstring(svg)
    left, right = (float(x) for x in root.get("data-vt-plot", "").split())
    assert root.get("data-vt-cycles") == "0 2"
    rects = blocks(svg)
    assert len(rects) == 4
    xs = [float(r.get("x", 0)) for r in rects]
    # x is proportional to the onset: 0, 1/8, 1/4 and 1/2 of the window
    for x, begin in zip(xs, (0, 0.25, 0.5, 1.0), strict=True):
        assert x == pytest.approx(left + begin / 2 * (right - left), abs=1)
    ys = {float(r.get("y", 0)) for r in rects}
    assert len(ys) == 3  # three distinct pitches, three rows (no empty rows between 60 and 72)
    assert row_labels(svg) == ["C5", "E4", "C4"]  # high to low
    same_row = [float(r.get("y", 0)) for r in rects]
    assert same_row[0] == same_row[2]  # both 60s on one row


def test_named_sounds_get_rows_and_colours_of_their_own():
    haps = [(0, 0.5, {"s": "bd"}), (0.5, 1, {"s": "sd"}), (1, 1.5, {"s": "bd"}), (1.5, 2, {"note": 60})]
    svg = pianoroll_svg(haps, 0, 2)
    assert row_labels(svg) == ["bd", "sd", "C4"]
    fills = [r.get("fill") for r in blocks(svg)]
    assert fills[0] == fills[2] != fills[1]


def test_text_and_lines_use_the_theme_colour_never_black():
    drawings = [
        pianoroll_svg([(0, 1, {"s": "bd"}), (1, 2, 60)], 0, 2, now=0.5),
        timeline_svg({"a": [(0.0, 0.0, 1.0), (0.5, 1.0, 2.0)]}),
    ]
    engine = Engine().start()
    try:
        assert engine.call(parse_command({"op": "add_module", "name": "lfo1", "type": "lfo"})).error is None
        drawings.append(patch_svg(engine.snapshot, engine.registry))
    finally:
        engine.stop()
    for svg in drawings:
        root = ET.fromstring(svg)
        texts = list(root.iter(f"{SVG}text"))
        assert texts
        for t in texts:
            assert t.get("fill") == "currentColor", ET.tostring(t)
        for el in root.iter():
            for attr in ("fill", "stroke"):
                assert (el.get(attr) or "").lower() not in ("black", "#000", "#000000", "white", "#fff", "#ffffff")


def test_a_picture_shows_inline_in_the_themes_text_colour_and_stands_alone_as_a_file(tmp_path: Any):
    pic = Picture(pianoroll_svg([(0, 1, 60)], 0, 1))
    html = pic._repr_html_()
    assert html.startswith('<div class="vt-picture"') and "var(--jp-content-font-color1" in html
    assert "<svg" in html  # inline: currentColor is the theme's colour, not an <img>'s black
    alone = pic._repr_svg_()
    ET.fromstring(alone)
    assert "prefers-color-scheme: dark" in alone
    assert ET.fromstring(pic.save(tmp_path / "roll.svg").read_text()).tag == f"{SVG}svg"


def test_the_playhead_is_drawn_only_inside_the_window():
    root = ET.fromstring(pianoroll_svg([(0, 1, 60)], 0, 4, now=1.0))
    head = next(el for el in root.iter() if el.get("data-vt-playhead") is not None)
    left, right = (float(x) for x in root.get("data-vt-plot", "").split())
    assert head.get("visibility") == "visible"
    assert float(head.get("x1", 0)) == pytest.approx(left + (right - left) / 4, abs=0.1)
    head = next(el for el in ET.fromstring(pianoroll_svg([], 0, 4, now=9)).iter() if el.get("data-vt-playhead") is not None)
    assert head.get("visibility") == "hidden"


def test_haps_of_takes_triples_and_pattern_like_objects():
    class Span:
        def __init__(self, b: float, e: float) -> None:
            self.begin, self.end = b, e

    class FakeHap:  # the shape of vtkernel.engine.patterns.core.Hap
        def __init__(self, whole: Span | None, value: Any, onset: bool = True) -> None:
            self.whole, self.part, self.value, self._onset = whole, whole, value, onset

        def has_onset(self) -> bool:
            return self._onset

    class Pat:
        def query(self, b: Any, e: Any) -> list[FakeHap]:
            return [FakeHap(Span(0, 0.5), "bd"), FakeHap(None, 0.3), FakeHap(Span(-0.5, 0.5), "x", onset=False)]

    assert haps_of(Pat(), 0, 1) == [Hap(0.0, 0.5, "bd")]
    assert haps_of([(0, 1, 5), (3, 4, 6)], 0, 2) == [Hap(0.0, 1.0, 5)]


def test_module_haps_shows_what_a_seq_plays_in_cycles():
    seq = default_registry().get("seq")
    params = {"steps": (60.0, None, 62.0, 64.0), "division": 4}
    haps, bpc = module_haps(seq, params, 4, 0, 1)
    assert bpc == 4.0
    # 4 steps per beat, one cycle = 4 beats = 16 steps: the 3 notes repeat 4 times
    assert len(haps) == 12
    assert haps[0] == Hap(0.0, 1 / 16, 60.0)
    assert haps[1] == Hap(2 / 16, 3 / 16, 62.0)


def test_a_window_must_have_a_length():
    with pytest.raises(ValueError):
        pianoroll_svg([], 2, 2)


def test_too_many_haps_are_counted_not_drawn():
    svg = pianoroll_svg([(i / 10000, (i + 1) / 10000, i % 7) for i in range(5000)], 0, 1)
    assert len(blocks(svg)) == 4096
    assert "+904 events not drawn" in svg
    assert "<title>" not in svg.split("</title>", 1)[1]  # so many: no tooltip per block (the bytes)


@pytest.mark.skipif(importlib.util.find_spec("vtkernel.engine.patterns.mini") is None, reason="the pattern core has not landed")
def test_pianoroll_of_mini_notation():
    pic = pianoroll("bd*2 [~ sd]", cycles=2)
    svg = pic.svg
    assert row_labels(svg) == ["bd", "sd"]
    assert len(blocks(svg)) == 6
