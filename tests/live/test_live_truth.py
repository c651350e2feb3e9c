"""In a watched file the file is the truth for what it declares (issue 12 #9, #10)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.live import LiveFile
from vtkernel.protocol import SetParam


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def make(path: Path, engine: Engine) -> LiveFile:
    return LiveFile(str(path), VT(engine, origin="file"))


def params(engine: Engine, name: str) -> dict:
    return dict(engine.snapshot.doc.modules[name].params)


def test_retyping_a_module_keeps_the_connections_the_file_still_declares(tmp_path: Path, engine: Engine) -> None:
    live = make(tmp_path / "p.py", engine)
    before = src(
        """
        vt.module("src", "lfo", rate=2)
        vt.module("dst", "lfo")
        vt.connect("src.out", "dst.rate")
        """
    )
    assert live.run(before).ok
    # `src` becomes a constant: remove + add, and the vt.connect line does not change, so it does not run.
    result = live.run(before.replace('vt.module("src", "lfo", rate=2)', 'vt.module("src", "const", value=0.5)'))
    assert result.ok and result.ran == (1,)
    assert engine.snapshot.doc.modules["src"].type == "const"
    assert ("src.out", "dst.rate") in engine.snapshot.doc.connections
    assert "src.out->dst.rate connected again" in result.text()


def test_a_retyped_module_loses_only_connections_the_file_does_not_declare(tmp_path: Path, engine: Engine) -> None:
    live = make(tmp_path / "p.py", engine)
    text = 'vt.module("a", "lfo")\nvt.module("b", "lfo")\n'
    assert live.run(text).ok
    VT(engine).connect("a.out", "b.depth")  # a cell's connection: a new type for `a` drops it, as in a cell
    VT(engine).flush()
    assert live.run(text.replace('"a", "lfo"', '"a", "const"')).ok
    assert ("a.out", "b.depth") not in engine.snapshot.doc.connections


def test_a_param_deleted_from_a_module_line_returns_to_its_default(tmp_path: Path, engine: Engine) -> None:
    live = make(tmp_path / "p.py", engine)
    assert live.run('vt.module("l", "lfo", rate=3, depth=0.25, shape="saw")\n').ok
    result = live.run('vt.module("l", "lfo", rate=3)\n')
    assert result.ok
    assert params(engine, "l") == {"rate": 3.0, "depth": 1.0, "shape": "sine"}
    assert "l.depth = 1.0 (the default)" in result.text()


def test_params_the_file_never_gave_are_left_as_the_slider_set_them(tmp_path: Path, engine: Engine) -> None:
    live = make(tmp_path / "p.py", engine)
    assert live.run('vt.module("l", "lfo", rate=3)\n').ok
    assert engine.call(SetParam(module="l", param="depth", value=0.3), origin="editor").error is None
    assert live.run('vt.module("l", "lfo", rate=4)\n').ok
    assert params(engine, "l")["depth"] == 0.3 and params(engine, "l")["rate"] == 4.0


def test_a_param_given_by_another_statement_of_the_file_stays(tmp_path: Path, engine: Engine) -> None:
    live = make(tmp_path / "p.py", engine)
    text = 'vt.module("l", "lfo", rate=3, depth=0.5)\nvt.module("l", "lfo", shape="saw")\n'
    assert live.run(text).ok
    assert live.run(text.replace("rate=3, depth=0.5", "rate=3")).ok
    assert params(engine, "l") == {"rate": 3.0, "depth": 1.0, "shape": "saw"}


def test_a_cell_keeps_merge_semantics(engine: Engine) -> None:
    vt = VT(engine)
    vt.module("l", "lfo", rate=3, depth=0.25)
    vt.module("l", "lfo", rate=3)
    vt.flush()
    assert params(engine, "l")["depth"] == 0.25
