"""The pure update step: every op, every error code, atomic batches, undo/redo."""

from __future__ import annotations

import pytest

from vtkernel.engine.apply import EditState, LoadDocument, apply, validate_document
from vtkernel.engine.document import Document, Snapshot
from vtkernel.engine.schema import default_registry
from vtkernel.protocol import VTError, parse_command

REG = default_registry()


def run(state: EditState, *commands: dict, origin: str = "t", now: float = 0.0) -> EditState:
    for data in commands:
        state, _ = apply(state, parse_command(data), REG, origin, now)
    return state


def err(state: EditState, data: dict) -> str:
    with pytest.raises(VTError) as info:
        apply(state, parse_command(data), REG, "t", 0.0)
    return info.value.code


def parse_err(data: object) -> str:
    with pytest.raises(VTError) as info:
        parse_command(data)
    return info.value.code


@pytest.fixture
def two_lfos() -> EditState:
    return run(
        EditState(Document()),
        {"op": "add_module", "name": "lfo1", "type": "lfo", "params": {"rate": 2}},
        {"op": "add_module", "name": "lfo2", "type": "lfo", "params": {"rate": 0.5, "shape": "saw"}},
        {"op": "connect", "src": "lfo1.out", "dst": "lfo2.rate"},
    )


def test_the_spec_example_document_is_what_the_commands_build(two_lfos: EditState) -> None:
    assert two_lfos.doc.to_json(12) == {
        "version": 12,
        "clock": {"bpm": 120.0, "playing": False, "meter": 4},
        "modules": {
            "lfo1": {"type": "lfo", "params": {"rate": 2.0, "depth": 1.0, "shape": "sine"}},
            "lfo2": {"type": "lfo", "params": {"rate": 0.5, "depth": 1.0, "shape": "saw"}},
        },
        "connections": [{"src": "lfo1.out", "dst": "lfo2.rate"}],
    }


def test_set_param_changes_one_value_and_reports_its_path(two_lfos: EditState) -> None:
    state, paths = apply(two_lfos, parse_command({"op": "set_param", "module": "lfo1", "param": "rate", "value": 3}), REG)
    assert state.doc.modules["lfo1"].params["rate"] == 3.0
    assert paths == [("modules", "lfo1", "params", "rate")]
    assert two_lfos.doc.modules["lfo1"].params["rate"] == 2.0  # the input is untouched


def test_a_command_that_changes_nothing_reports_no_paths(two_lfos: EditState) -> None:
    for data in (
        {"op": "set_param", "module": "lfo1", "param": "rate", "value": 2.0},
        {"op": "connect", "src": "lfo1.out", "dst": "lfo2.rate"},
        {"op": "disconnect", "src": "lfo2.out", "dst": "lfo1.depth"},
        {"op": "set_bpm", "bpm": 120},
        {"op": "stop"},
    ):
        state, paths = apply(two_lfos, parse_command(data), REG)
        assert paths == [] and state is two_lfos


def test_removing_a_module_removes_its_connections(two_lfos: EditState) -> None:
    state = run(two_lfos, {"op": "remove_module", "name": "lfo1"})
    assert "lfo1" not in state.doc.modules
    assert state.doc.sorted_connections() == []


def test_connections_are_sorted_and_unique(two_lfos: EditState) -> None:
    state = run(
        two_lfos,
        {"op": "connect", "src": "lfo2.out", "dst": "lfo1.depth"},
        {"op": "connect", "src": "lfo1.out", "dst": "lfo2.depth"},
        {"op": "connect", "src": "lfo1.out", "dst": "lfo2.depth"},
    )
    conns = state.doc.to_json()["connections"]
    assert conns == sorted(conns, key=lambda c: (c["src"], c["dst"]))
    assert len(conns) == 3


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"op": "set_param", "module": "nope", "param": "rate", "value": 1}, "unknown_module"),
        ({"op": "remove_module", "name": "nope"}, "unknown_module"),
        ({"op": "set_param", "module": "lfo1", "param": "speed", "value": 1}, "unknown_param"),
        ({"op": "add_module", "name": "x", "type": "lfo", "params": {"speed": 1}}, "unknown_param"),
        ({"op": "set_param", "module": "lfo1", "param": "rate", "value": -1}, "invalid_value"),
        ({"op": "set_param", "module": "lfo1", "param": "rate", "value": 0}, "invalid_value"),
        ({"op": "set_param", "module": "lfo1", "param": "depth", "value": 1.5}, "invalid_value"),
        ({"op": "set_param", "module": "lfo1", "param": "shape", "value": "noise"}, "invalid_value"),
        ({"op": "set_param", "module": "lfo1", "param": "rate", "value": "fast"}, "invalid_value"),
        ({"op": "set_param", "module": "lfo1", "param": "rate", "value": True}, "invalid_value"),
        ({"op": "set_bpm", "bpm": 19.9}, "invalid_value"),
        ({"op": "set_bpm", "bpm": 1000}, "invalid_value"),
        ({"op": "add_module", "name": "lfo1", "type": "lfo"}, "duplicate_name"),
        ({"op": "add_module", "name": "x", "type": "wobbler"}, "unknown_type"),
        ({"op": "connect", "src": "lfo1.in", "dst": "lfo2.rate"}, "unknown_port"),
        ({"op": "connect", "src": "lfo1.out", "dst": "lfo2.speed"}, "unknown_port"),
        ({"op": "connect", "src": "ghost.out", "dst": "lfo2.rate"}, "unknown_module"),
    ],
)
def test_each_error_has_its_stable_code(two_lfos: EditState, data: dict, code: str) -> None:
    assert err(two_lfos, data) == code


@pytest.mark.parametrize(
    "data",
    [
        {"op": "set_param", "module": "lfo1", "param": "rate", "vaule": 3},  # a typo never passes
        {"op": "set_param", "module": "lfo1", "param": "rate"},
        {"op": "add_module", "name": "1abc", "type": "lfo"},
        {"op": "add_module", "name": "a" * 65, "type": "lfo"},
        {"op": "add_module", "name": "has space", "type": "lfo"},
        {"op": "connect", "src": "lfo1", "dst": "lfo2.rate"},
        {"op": "set_bpm", "bpm": "fast"},
        {"op": "set_bpm", "bpm": True},
        {"op": "teleport"},
        {"op": "batch", "commands": "not a list"},
        {"op": "play", "extra": 1},
        {"name": "x"},
    ],
)
def test_commands_that_do_not_fit_the_schema_are_invalid_command(data: dict) -> None:
    assert parse_err(data) == "invalid_command"


def test_non_objects_are_invalid_command() -> None:
    for data in (None, 3, "add", [1, 2]):
        assert parse_err(data) == "invalid_command"


def test_a_batch_applies_whole_or_reports_its_first_failure(two_lfos: EditState) -> None:
    ok = run(
        two_lfos,
        {
            "op": "batch",
            "commands": [
                {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [60, None, 62]}},
                {"op": "set_param", "module": "lfo1", "param": "rate", "value": 5},
            ],
        },
    )
    assert ok.doc.modules["s"].params["steps"] == (60, None, 62)
    bad = {
        "op": "batch",
        "commands": [
            {"op": "set_param", "module": "lfo1", "param": "rate", "value": 9},
            {"op": "set_param", "module": "lfo1", "param": "depth", "value": 7},
            {"op": "remove_module", "name": "ghost"},
        ],
    }
    assert err(two_lfos, bad) == "invalid_value"
    assert two_lfos.doc.modules["lfo1"].params["rate"] == 2.0


def test_undo_and_redo_restore_the_patch_not_the_transport(two_lfos: EditState) -> None:
    state = run(two_lfos, {"op": "set_param", "module": "lfo1", "param": "rate", "value": 7}, {"op": "play"})
    state = run(state, {"op": "undo"})
    assert state.doc.modules["lfo1"].params["rate"] == 2.0
    assert state.doc.clock.playing is True  # undo never stops the music
    state = run(state, {"op": "redo"})
    assert state.doc.modules["lfo1"].params["rate"] == 7.0


def test_undo_covers_bpm_and_runs_out(two_lfos: EditState) -> None:
    state = run(two_lfos, {"op": "set_bpm", "bpm": 90})
    state = run(state, {"op": "undo"}, {"op": "undo"}, {"op": "undo"}, {"op": "undo"})
    assert state.doc.clock.bpm == 120.0 and state.doc.modules == Document().modules
    assert err(state, {"op": "undo"}) == "nothing_to_undo"


def test_a_new_edit_clears_redo(two_lfos: EditState) -> None:
    state = run(two_lfos, {"op": "undo"}, {"op": "set_bpm", "bpm": 100})
    assert err(state, {"op": "redo"}) == "nothing_to_undo"


def test_a_slider_drag_is_one_undo_step(two_lfos: EditState) -> None:
    state = two_lfos
    for i in range(20):
        state = run(state, {"op": "set_param", "module": "lfo1", "param": "rate", "value": 3 + i}, origin="editor", now=100 + i * 0.05)
    state = run(state, {"op": "undo"})
    assert state.doc.modules["lfo1"].params["rate"] == 2.0


def test_load_document_replaces_the_patch_and_is_undoable(two_lfos: EditState) -> None:
    other = run(EditState(Document()), {"op": "add_module", "name": "only", "type": "seq"}).doc
    state, paths = apply(two_lfos, LoadDocument(other), REG)
    assert list(state.doc.modules.keys()) == ["only"]
    assert ("modules", "lfo1") in paths and ("connections", "lfo1.out", "lfo2.rate") in paths
    state = run(state, {"op": "undo"})
    assert sorted(state.doc.modules.keys()) == ["lfo1", "lfo2"]


def test_validate_document_names_the_field() -> None:
    with pytest.raises(VTError) as info:
        validate_document({"modules": {"a": {"type": "lfo", "params": {"rate": -2}}}}, REG)
    assert info.value.code == "session_invalid" and "a.rate" in info.value.message
    with pytest.raises(VTError, match="wobbler"):
        validate_document({"modules": {"a": {"type": "wobbler"}}}, REG)


def test_snapshot_is_a_read_only_mapping_shaped_like_the_document(two_lfos: EditState) -> None:
    snap = Snapshot(5, two_lfos.doc)
    assert snap.version == 5 and snap["version"] == 5
    assert snap["modules"]["lfo1"]["params"]["rate"] == 2.0
    assert dict(snap["clock"]) == {"bpm": 120.0, "playing": False, "meter": 4}
    assert snap["connections"] == ({"src": "lfo1.out", "dst": "lfo2.rate"},)
    with pytest.raises(TypeError):
        snap["modules"]["lfo1"]["params"]["rate"] = 3  # type: ignore[index]


def test_meter_is_set_checked_and_undone_like_bpm(two_lfos: EditState) -> None:
    from vtkernel.engine.script import document_to_script
    from vtkernel.language import parse_line
    from vtkernel.protocol import SetMeter

    assert parse_line("meter 3") == SetMeter(meter=3)
    assert parse_line("meter 7 @bar # odd") == SetMeter(meter=7, quantize="bar")
    state, paths = apply(two_lfos, parse_command({"op": "set_meter", "meter": 3}), REG)
    assert state.doc.clock.meter == 3 and paths == [("clock", "meter")]
    assert apply(state, parse_command({"op": "set_meter", "meter": 3}), REG)[1] == []  # no-op: no version
    assert "vt.meter(3)" in document_to_script(state.doc).splitlines()[:3]
    undone = run(state, {"op": "undo"})
    assert undone.doc.clock.meter == 4
    assert run(undone, {"op": "redo"}).doc.clock.meter == 3
    for bad in (0, 65):
        assert err(two_lfos, {"op": "set_meter", "meter": bad}) == "invalid_value"
    for wrong in (True, "4", 3.5, None):
        assert parse_err({"op": "set_meter", "meter": wrong}) == "invalid_command"
    assert parse_err({"op": "set_meter"}) == "invalid_command"


def test_vt_meter_and_the_script_round_trip() -> None:
    from vtkernel.api import VT
    from vtkernel.engine import Engine
    from vtkernel.engine.script import document_to_script

    engine = Engine().start()
    try:
        vt = VT(engine)
        vt.bpm(90)
        vt.meter(7)
        doc = vt.snapshot().doc
        script = document_to_script(doc)
        assert script.splitlines()[1:3] == ["vt.bpm(90.0)", "vt.meter(7)"]
        fresh = Engine().start()
        try:
            other = VT(fresh)
            exec(compile(script, "<script>", "exec"), {"vt": other})
            assert (other.snapshot().doc.clock.bpm, fresh.snapshot.doc.clock.meter) == (90.0, 7)
        finally:
            fresh.stop()
    finally:
        engine.stop()
