"""`clock.link` in the document, the command language and `vt` (SPEC §10): pure, no Link peer involved."""

from __future__ import annotations

import importlib.util

import pytest

from vtkernel.api import VT
from vtkernel.engine import Engine, default_registry, validate_document
from vtkernel.engine.apply import EditState, apply
from vtkernel.engine.document import Document
from vtkernel.language import parse_line
from vtkernel.protocol import SetBpm, SetLink, Undo, VTError, parse_command

REG = default_registry()
HAS_AALINK = importlib.util.find_spec("aalink") is not None


def test_the_command_language_says_link_on_and_off() -> None:
    assert parse_line("link on") == SetLink(link=True, start_stop=False)
    assert parse_line("link off  # leave the session") == SetLink(link=False, start_stop=False)
    with pytest.raises(VTError, match="expected on or off"):
        parse_line("link maybe")
    assert parse_command({"op": "set_link", "link": True}) == SetLink(link=True)


@pytest.mark.skipif(not HAS_AALINK, reason="aalink is not installed (pip install 'vtkernel[link]')")
def test_joining_is_recorded_in_the_clock_and_is_not_undone() -> None:
    state = EditState(Document(), None, None)
    state, _ = apply(state, SetBpm(bpm=90), REG)
    state, changes = apply(state, SetLink(link=True), REG)
    assert changes == [("clock", "link")]
    assert state.doc.to_json()["clock"] == {"bpm": 90.0, "playing": False, "meter": 4, "link": True}
    state, _ = apply(state, Undo(), REG)  # undoes the tempo, never the session membership
    assert state.doc.clock.bpm == 120.0 and state.doc.clock.link is True
    assert apply(state, SetLink(link=True), REG)[1] == []  # no change, no version


def test_a_document_out_of_a_session_shows_no_link_field() -> None:
    assert "link" not in Document().to_json()["clock"]


def test_a_saved_document_keeps_link_and_a_bad_value_is_refused() -> None:
    doc = validate_document({"clock": {"bpm": 100, "playing": False, "meter": 3, "link": True}}, REG)
    assert doc.clock.link is True and doc.to_json()["clock"]["link"] is True
    with pytest.raises(VTError, match=r"clock\.link and clock\.link_sync must be true or false"):
        validate_document({"clock": {"link": "yes"}}, REG)


def test_without_the_binding_joining_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "aalink" else real(name, *a))
    with pytest.raises(VTError) as info:
        apply(EditState(Document(), None, None), SetLink(link=True), REG)
    assert info.value.code == "invalid_value"
    assert info.value.message == (
        "Ableton Link needs the aalink package in the kernel's Python: pip install 'vtkernel[link]'"
    )


@pytest.mark.skipif(not HAS_AALINK, reason="aalink is not installed (pip install 'vtkernel[link]')")
def test_vt_link_from_a_cell() -> None:
    engine = Engine().start()
    try:
        vt = VT(engine)
        vt.link(True)
        assert vt.snapshot()["clock"]["link"] is True
        vt.link(False)
        assert "link" not in vt.snapshot()["clock"]
    finally:
        engine.stop()


def test_link_sync_shares_play_and_stop_and_link_on_alone_does_not() -> None:
    assert parse_line("link sync") == SetLink(link=True, start_stop=True)
    assert parse_line("link on") == SetLink(link=True, start_stop=False)
    doc = validate_document({"clock": {"link": True, "link_sync": True}}, REG)
    assert doc.clock.link_sync and doc.to_json()["clock"]["link_sync"] is True
    assert "link_sync" not in validate_document({"clock": {"link": True}}, REG).to_json()["clock"]


@pytest.mark.skipif(not HAS_AALINK, reason="aalink is not installed (pip install 'vtkernel[link]')")
def test_leaving_the_session_stops_sharing_play_and_stop() -> None:
    state = EditState(Document(), None, None)
    state, changes = apply(state, SetLink(link=True, start_stop=True), REG)
    assert changes == [("clock", "link"), ("clock", "link_sync")]
    state, changes = apply(state, SetLink(link=False), REG)
    assert not state.doc.clock.link and not state.doc.clock.link_sync
    assert changes == [("clock", "link"), ("clock", "link_sync")]
