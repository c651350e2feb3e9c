"""`LiveFile`: incremental runs of a file against a real engine, one atomic batch per save."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.live import LiveFile, Ownership


def src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def patch(tmp_path: Path) -> Path:
    return tmp_path / "patch.py"


def make(patch: Path, engine: Engine, ownership: Ownership | None = None) -> LiveFile:
    return LiveFile(str(patch), VT(engine, origin="file"), ownership)


def doc(engine: Engine):
    return engine.snapshot.doc


BASE = src(
    """
    import vt_live_hits as hits
    hits.log.append("import")
    base = 2.0
    vt.module("a", "lfo", rate=base)
    hits.log.append("a")
    vt.module("b", "lfo", rate=base * 2)
    hits.log.append("b")
    vt.module("c", "lfo", depth=0.5)
    hits.log.append("c")
    """
)


def test_the_first_run_runs_everything_as_one_version(patch, engine, hits):
    live = make(patch, engine)
    result = live.run(BASE)
    assert result.ok and result.version == 1
    assert hits.log == ["import", "a", "b", "c"]
    assert set(doc(engine).modules.keys()) == {"a", "b", "c"}
    assert live.namespace["__file__"] == str(patch)


def test_only_changed_statements_run_again(patch, engine, hits):
    live = make(patch, engine)
    live.run(BASE)
    hits.log.clear()
    result = live.run(BASE.replace('hits.log.append("c")', 'hits.log.append("c2")'))
    assert result.ok and result.ran == (9,)
    assert hits.log == ["c2"]
    assert engine.snapshot.version == 1  # nothing in the engine changed, so no new version


def test_statements_that_read_a_changed_name_run_again(patch, engine, hits):
    live = make(patch, engine)
    live.run(BASE)
    hits.log.clear()
    result = live.run(BASE.replace("base = 2.0", "base = 3.0"))
    assert result.ran == (3, 4, 6)
    assert hits.log == []
    assert doc(engine).modules["a"].params["rate"] == 3.0
    assert doc(engine).modules["b"].params["rate"] == 6.0


def test_a_patched_function_runs_new_code_through_references_held_elsewhere(patch, engine, hits):
    text = src(
        """
        import vt_live_hits as hits
        def pattern(step):
            return 60 + step
        hits.log.append(pattern)
        """
    )
    live = make(patch, engine)
    live.run(text)
    held = hits.log[0]  # e.g. a scheduled pattern the engine holds
    assert held(1) == 61
    result = live.run(text.replace("60 + step", "72 + step"))
    assert result.ok and result.patched == ("pattern",)
    assert held(1) == 73 and live.namespace["pattern"] is held
    assert hits.log == [held, held]  # the statement that used it ran again, with the same object


def test_a_changed_helper_updates_the_modules_computed_from_it(patch, engine):
    text = src(
        """
        def steps():
            return [60, None, 62]
        vt.module("s", "seq", steps=steps())
        """
    )
    live = make(patch, engine)
    live.run(text)
    live.run(text.replace("[60, None, 62]", "[48, 50]"))
    assert doc(engine).modules["s"].params["steps"] == (48, 50)


def test_re_declaring_several_params_or_a_new_type_applies_in_the_same_version(patch, engine):
    live = make(patch, engine)
    live.run('vt.module("l", "lfo", rate=2, depth=0.5)\nvt.module("m", "lfo")\nvt.connect("l.out", "m.rate")\n')
    result = live.run('vt.module("l", "lfo", rate=3, depth=0.25)\nvt.module("m", "recorder")\n')
    assert result.ok, result.text()
    assert engine.snapshot.version == 2
    assert dict(doc(engine).modules["l"].params) == {"rate": 3.0, "depth": 0.25, "shape": "sine"}
    assert doc(engine).modules["m"].type == "recorder" and not doc(engine).connections


def test_declarations_that_disappear_are_removed_in_the_same_version(patch, engine):
    text = src(
        """
        vt.module("a", "lfo")
        vt.module("b", "lfo")
        vt.connect("a.out", "b.rate")
        """
    )
    live = make(patch, engine)
    live.run(text)
    result = live.run('vt.module("a", "lfo", rate=5)\n')
    assert result.ok and result.removed_modules == ("b",)
    assert set(doc(engine).modules.keys()) == {"a"} and not doc(engine).connections
    assert engine.snapshot.version == 2  # removal and update: one atomic version
    live.run('vt.module("a", "lfo", rate=5)\nvt.module("b", "lfo")\n')
    live.run('vt.module("a", "lfo", rate=5)\nvt.module("b", "lfo")\nvt.connect("a.out", "b.rate")\n')
    result = live.run('vt.module("a", "lfo", rate=5)\nvt.module("b", "lfo")\n')
    assert result.removed_connections == (("a.out", "b.rate"),) and not doc(engine).connections


def test_unchanged_statements_keep_declaring_what_they_declared(patch, engine):
    text = 'vt.module("a", "lfo")\nx = 1\n'
    live = make(patch, engine)
    live.run(text)
    live.run(text.replace("x = 1", "x = 2"))  # only line 2 ran: "a" is still declared
    assert "a" in doc(engine).modules and "a" in live.declared.modules


def test_modules_made_elsewhere_are_never_removed(patch, engine):
    cell = VT(engine)
    cell.module("mine", "lfo", rate=3)
    cell.flush()
    live = make(patch, engine)
    live.run('vt.module("a", "lfo")\nvt.connect("a.out", "mine.rate")\n')
    live.run('vt.module("a", "lfo")\n')
    assert doc(engine).modules["mine"].params["rate"] == 3.0
    assert not doc(engine).connections


def test_declaring_a_module_made_elsewhere_takes_ownership(patch, engine):
    cell = VT(engine)
    cell.module("shared", "lfo", rate=3)
    cell.flush()
    live = make(patch, engine)
    live.run('vt.module("shared", "lfo", rate=4)\n')
    assert doc(engine).modules["shared"].params["rate"] == 4.0
    live.run("pass\n")
    assert "shared" not in doc(engine).modules


def test_the_last_file_to_declare_a_module_owns_it(tmp_path, engine):
    owners = Ownership()
    one = LiveFile(str(tmp_path / "one.py"), VT(engine, origin="file"), owners)
    two = LiveFile(str(tmp_path / "two.py"), VT(engine, origin="file"), owners)
    one.run('vt.module("x", "lfo", rate=1)\n')
    two.run('vt.module("x", "lfo", rate=2)\n')
    one.run("pass\n")  # one no longer declares x, but two owns it now
    assert doc(engine).modules["x"].params["rate"] == 2.0
    two.run("pass\n")
    assert "x" not in doc(engine).modules


def test_a_gui_change_persists_until_its_line_is_edited(patch, engine):
    text = 'vt.module("l", "lfo", rate=2)\nvt.module("m", "lfo")\n'
    live = make(patch, engine)
    live.run(text)
    gui = VT(engine, origin="editor")
    gui.set("l.rate", 7)
    gui.flush()
    live.run(text.replace('vt.module("m", "lfo")', 'vt.module("m", "lfo", depth=0.5)'))
    assert doc(engine).modules["l"].params["rate"] == 7.0  # that line did not run again
    live.run(text.replace("rate=2", "rate=3"))
    assert doc(engine).modules["l"].params["rate"] == 3.0


def test_a_syntax_error_applies_nothing_and_points_at_its_line(patch, engine, hits):
    live = make(patch, engine)
    live.run(BASE)
    before = engine.snapshot
    hits.log.clear()
    broken = BASE.replace('vt.module("c", "lfo", depth=0.5)', 'vt.module("c", "lfo", depth=)')
    result = live.run(broken)
    assert not result.ok and result.error is not None
    assert result.error.lineno == 8 and result.error.summary.startswith("patch.py, line 8: SyntaxError")
    assert engine.snapshot is before and hits.log == []
    assert "nothing applied" in result.text()


def test_an_exception_applies_nothing_and_shows_only_the_users_frames(patch, engine):
    live = make(patch, engine)
    live.run('vt.module("a", "lfo")\n')
    result = live.run('vt.module("a", "lfo")\nvt.module("b", "lfo")\nx = 1 / 0\n')
    assert not result.ok and result.error.lineno == 3
    assert result.error.summary == "patch.py, line 3: ZeroDivisionError: division by zero"
    assert "vtkernel" not in result.error.traceback.replace(str(patch), "")
    assert set(doc(engine).modules.keys()) == {"a"}  # b was not half-applied


def test_an_invalid_command_is_reported_at_its_line_and_nothing_is_half_applied(patch, engine):
    live = make(patch, engine)
    live.run('vt.module("a", "lfo")\n')
    result = live.run('vt.module("a", "lfo", rate=2)\nvt.module("l", "lfo", rate=-1)\n')
    assert not result.ok and result.error.lineno == 2
    assert "[invalid_value]" in result.error.summary and "l.rate" in result.error.summary
    assert doc(engine).modules["a"].params["rate"] == 1.0 and "l" not in doc(engine).modules


def test_after_an_error_the_next_good_save_is_diffed_against_the_last_good_one(patch, engine, hits):
    live = make(patch, engine)
    live.run(BASE)
    live.run(BASE.replace("base = 2.0", "base = 9.0\nraise RuntimeError('no')"))
    assert live.namespace["base"] == 2.0  # the namespace is restored too
    hits.log.clear()
    result = live.run(BASE.replace("base = 2.0", "base = 3.0"))
    assert result.ok and result.ran == (3, 4, 6)
    assert doc(engine).modules["b"].params["rate"] == 6.0
    assert live.last_good_text == BASE.replace("base = 2.0", "base = 3.0")


def test_a_compile_time_error_applies_nothing(patch, engine, hits):
    live = make(patch, engine)
    live.run(BASE)
    hits.log.clear()
    result = live.run(BASE.replace('hits.log.append("a")', 'hits.log.append("a2")') + "return 1\n")
    assert not result.ok and result.error.lineno == 10 and "'return' outside function" in result.error.summary
    assert hits.log == []  # the changed line 5 did not run either


def test_a_failed_save_undoes_its_function_patches(patch, engine):
    text = "def f():\n    return 1\n"
    live = make(patch, engine)
    live.run(text)
    f = live.namespace["f"]
    live.run("def f():\n    return 2\nboom()\n")
    assert f() == 1


def test_a_moved_function_reports_its_new_line(patch, engine):
    text = "def f():\n    return 1 / 0\n"
    live = make(patch, engine)
    live.run(text)
    live.run("# a comment\n# and another\n" + text)
    with pytest.raises(ZeroDivisionError) as info:
        live.namespace["f"]()
    assert info.traceback[-1].lineno + 1 == 4  # pytest's lineno is 0-based


def test_dataclasses_and_future_imports_work_in_a_file(patch, engine):
    text = src(
        """
        from __future__ import annotations
        from dataclasses import dataclass
        @dataclass
        class Step:
            note: int
        vt.module("s", "seq", steps=[Step(60).note])
        """
    )
    live = make(patch, engine)
    assert live.run(text).ok
    assert doc(engine).modules["s"].params["steps"] == (60,)


def test_close_releases_ownership_and_keeps_the_modules(patch, engine):
    owners = Ownership()
    live = make(patch, engine, owners)
    live.run('vt.module("a", "lfo")\n')
    live.close()
    assert "a" in doc(engine).modules and owners.modules == {}
