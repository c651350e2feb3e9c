"""SessionManager with a real engine thread and the real vt-saver thread."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

import pytest
from conftest import ObservedOps, Reports, make_doc

from vtkernel.engine import Engine, LoadDocument, Snapshot
from vtkernel.protocol import AddModule, Redo, SetBpm, SetParam, Undo, VTError
from vtkernel.session import SessionManager, SessionStore, default_session_path
from vtkernel.session.format import decode, encode


def on_disk(path: Path, engine: Engine) -> int:
    return decode(path.read_bytes(), engine.registry).version


def rate(engine: Engine, module: str = "lfo1") -> float:
    return float(engine.snapshot["modules"][module]["params"]["rate"])


def saver_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vt-saver"]


# ----- open / save / close ---------------------------------------------------------------


def test_open_creates_a_missing_file_from_the_current_document(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    engine.call(AddModule(name="lfo1", type="lfo"))
    message = manager.open(tmp_path / "new.vtsession")
    assert message.startswith(f"created {tmp_path / 'new.vtsession'} at version 1; autosave within 0.05 s")
    assert on_disk(tmp_path / "new.vtsession", engine) == 1 and manager.path == tmp_path / "new.vtsession"


def test_every_change_is_autosaved_and_a_burst_is_coalesced(
    tmp_path: Path, engine: Engine, manager: SessionManager, observed: ObservedOps
) -> None:
    path = tmp_path / "s.vtsession"
    manager.open(path)
    engine.call(AddModule(name="lfo1", type="lfo"))
    writes_before = observed.replaced
    for i in range(200):
        engine.submit(SetParam(module="lfo1", param="rate", value=1.0 + i))
    engine.wait_applied()
    final = engine.version
    observed.wait(lambda: on_disk(path, engine) == final)  # no save() call: the saver did it
    assert observed.replaced - writes_before < 20  # 200 changes, a handful of writes
    assert decode(path.read_bytes(), engine.registry).document == engine.snapshot.doc


def test_each_isolated_change_reaches_the_disk_without_a_save(
    tmp_path: Path, engine: Engine, manager: SessionManager, observed: ObservedOps
) -> None:
    """A lone change right after a save must still wake the saver (no lost wake-up)."""
    path = tmp_path / "s.vtsession"
    manager.open(path)
    engine.call(AddModule(name="lfo1", type="lfo"))
    for i in range(8):
        version = engine.call(SetParam(module="lfo1", param="rate", value=2.0 + i)).version
        observed.wait(lambda v=version: on_disk(path, engine) == v)


def test_save_returns_once_the_current_version_is_on_disk(tmp_path: Path, engine: Engine, reports: Reports) -> None:
    manager = SessionManager(engine, report=reports, autosave_delay=60.0)  # autosave far away
    path = tmp_path / "s.vtsession"
    manager.open(path)
    engine.call(AddModule(name="lfo1", type="lfo"))
    engine.call(SetParam(module="lfo1", param="rate", value=3.0))
    assert manager.save() == f"saved {path} at version {engine.version}"
    assert on_disk(path, engine) == engine.version
    manager.close()


def test_a_version_already_on_disk_is_not_written_again(
    tmp_path: Path, engine: Engine, manager: SessionManager, observed: ObservedOps
) -> None:
    manager.open(tmp_path / "s.vtsession")
    engine.call(AddModule(name="lfo1", type="lfo"))
    manager.save()
    writes = observed.replaced
    manager.save()
    manager.save()
    assert observed.replaced == writes


def test_close_saves_the_last_change_stops_the_saver_and_releases_the_lock(
    tmp_path: Path, engine: Engine, reports: Reports
) -> None:
    manager = SessionManager(engine, report=reports, autosave_delay=60.0)
    path = tmp_path / "s.vtsession"
    manager.open(path)
    engine.call(AddModule(name="lfo1", type="lfo"))
    assert manager.close(timeout=5.0) == f"closed {path} at version {engine.version}"
    assert on_disk(path, engine) == engine.version
    assert saver_threads() == [] and manager.path is None
    assert (tmp_path / "s.vtsession.lock").read_text() == ""
    assert manager.close() == "no session is open"


def test_reopening_continues_from_the_saved_version(tmp_path: Path, engine: Engine, reports: Reports) -> None:
    path = tmp_path / "s.vtsession"
    with SessionManager(engine, report=reports) as manager:
        manager.open(path)
        engine.call(AddModule(name="lfo1", type="lfo"))
        for i in range(5):
            engine.call(SetParam(module="lfo1", param="rate", value=2.0 + i))
        saved = engine.version
    fresh = Engine().start()
    try:
        with SessionManager(fresh, report=reports) as manager:
            assert manager.open(path).startswith(f"opened {path}: version {saved}, 1 modules, saved ")
            assert fresh.version == saved and rate(fresh) == 6.0
            assert fresh.call(SetParam(module="lfo1", param="rate", value=9.0)).version == saved + 1
    finally:
        fresh.stop()


def test_save_without_a_session_says_how_to_get_one(engine: Engine, manager: SessionManager) -> None:
    with pytest.raises(VTError, match="no session is open: use `open PATH` or `save PATH`"):
        manager.save()


def test_save_as_writes_the_new_file_and_moves_the_session_there(
    tmp_path: Path, engine: Engine, manager: SessionManager, reports: Reports
) -> None:
    first, second = tmp_path / "a.vtsession", tmp_path / "b.vtsession"
    manager.open(first)
    engine.call(AddModule(name="lfo1", type="lfo"))
    message = manager.save(second)
    assert message.startswith(f"closed {first} at version {engine.version}; saved as {second}")
    assert manager.path == second and on_disk(second, engine) == engine.version
    assert (tmp_path / "a.vtsession.lock").read_text() == ""  # released
    other = Engine().start()
    try:
        with pytest.raises(VTError, match="already open"):
            SessionManager(other, report=reports).open(second)
    finally:
        other.stop()


# ----- undo semantics: open is not an edit, load is ---------------------------------------


def test_open_is_not_undoable(tmp_path: Path, engine: Engine, manager: SessionManager) -> None:
    path = tmp_path / "s.vtsession"
    path.write_bytes(encode(Snapshot(30, make_doc(3))))
    manager.open(path)
    assert engine.version == 30
    assert engine.call(Undo()).error is not None  # nothing to undo: the file is the starting point
    engine.call(SetParam(module="lfo1", param="rate", value=9.0))
    engine.call(Undo())
    assert rate(engine) == 2.0 and engine.snapshot.doc == make_doc(3)
    engine.call(Redo())
    assert rate(engine) == 9.0


def test_load_replaces_the_document_as_one_undoable_version(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    other = tmp_path / "other.vtsession"
    other.write_bytes(encode(Snapshot(5, make_doc(4, bpm=90.0))))
    manager.open(tmp_path / "s.vtsession")
    engine.call(AddModule(name="mine", type="lfo"))
    before, version = engine.snapshot.doc, engine.version
    message = manager.load(other)
    assert message.startswith(f"loaded {other} (saved version 5, 4 modules) as version {version + 1}")
    assert engine.snapshot.doc.modules == make_doc(4).modules and engine.snapshot["clock"]["bpm"] == 90.0
    engine.call(Undo())
    assert engine.snapshot.doc == before
    manager.load(other)
    assert manager.load(other).endswith("is the same as the current document; nothing changed")
    manager.save()  # the bound session saves the loaded content like any other change
    assert decode((tmp_path / "s.vtsession").read_bytes(), engine.registry).document == engine.snapshot.doc


def test_undo_cannot_reach_back_across_an_open(tmp_path: Path, engine: Engine, manager: SessionManager) -> None:
    engine.call(AddModule(name="scratch", type="lfo"))  # an edit from before the session
    path = tmp_path / "s.vtsession"
    path.write_bytes(encode(Snapshot(30, make_doc(3))))
    manager.open(path)
    outcome = engine.call(Undo())
    assert outcome.error is not None and outcome.error.code == "nothing_to_undo"


# ----- recovery through open ----------------------------------------------------------------


def test_open_recovers_from_a_backup_says_so_and_makes_the_main_file_good_again(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    path = tmp_path / "s.vtsession"
    store = SessionStore(path, engine.registry)
    for v in (3, 4):
        store.save(encode(Snapshot(v, make_doc(v))), v)
    path.write_bytes(path.read_bytes()[:-30])
    message = manager.open(path)
    assert "s.vtsession is unreadable" in message and "moved it to s.vtsession.corrupt" in message
    assert "recovered version 3 from backup s.vtsession.1" in message
    assert engine.version == 3 and len(engine.snapshot.doc.modules) == 3
    assert on_disk(path, engine) == 3  # rewritten during open, before the first edit
    assert (tmp_path / "s.vtsession.corrupt").exists()


def test_an_unusable_session_fails_to_open_and_leaves_it_unlocked(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    path = tmp_path / "s.vtsession"
    path.write_text('{"format": "vtkernel.session", "format_version": 1}')
    for _ in range(2):  # the second attempt gets the same answer, not session_locked
        with pytest.raises(VTError) as info:
            manager.open(path)
        assert info.value.code == "session_invalid" and "checksum" in info.value.message
    assert manager.path is None and engine.version == 0


# ----- faults: reported, engine unaffected, the next save catches up -------------------------


def test_a_full_disk_is_reported_once_and_the_next_save_catches_up(
    tmp_path: Path, engine: Engine, manager: SessionManager, observed: ObservedOps, reports: Reports
) -> None:
    path = tmp_path / "s.vtsession"
    manager.open(path)
    engine.call(AddModule(name="lfo1", type="lfo"))
    manager.save()
    good = path.read_bytes()
    observed.fail["write"] = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    engine.call(SetParam(module="lfo1", param="rate", value=5.0))
    line = reports.wait_for("No space left on device")
    assert line.startswith("could not save s.vtsession: writing failed: No space left on device (ENOSPC)")
    assert "the engine keeps running" in line
    for i in range(20):  # the engine is not held up by the failing saver
        assert engine.call(SetParam(module="lfo1", param="rate", value=6.0 + i)).error is None
    with pytest.raises(VTError) as info:
        manager.save()
    assert info.value.code == "io_error"
    assert path.read_bytes() == good
    assert "failed" in str(manager.status())
    assert sum("ENOSPC" in line for line in reports.lines) == 1  # one report per distinct problem
    del observed.fail["write"]
    assert manager.save() == f"saved {path} at version {engine.version}"
    assert on_disk(path, engine) == engine.version and rate(engine) == 25.0
    reports.wait_for("saved again")
    assert manager.status().up_to_date


def test_a_saver_mid_write_does_not_hold_up_the_engine(
    tmp_path: Path, engine: Engine, manager: SessionManager, observed: ObservedOps
) -> None:
    """While a write is in progress, the engine applies commands: it needs nothing the saver holds."""
    manager.open(tmp_path / "s.vtsession")
    engine.call(AddModule(name="lfo1", type="lfo"))
    applied_during_write: list[bool] = []

    def during_write() -> None:
        if not applied_during_write:
            seq = 0
            for i in range(500):
                seq = engine.submit(SetParam(module="lfo1", param="rate", value=1.0 + i))
            applied_during_write.append(engine.wait_applied(seq, timeout=10))

    observed.before_replace = during_write
    engine.call(SetParam(module="lfo1", param="depth", value=0.25))
    manager.save()
    assert applied_during_write == [True]
    observed.before_replace = None
    manager.save()
    assert on_disk(tmp_path / "s.vtsession", engine) == engine.version and rate(engine) == 500.0


def test_the_saver_keeps_up_with_a_10k_module_document_while_commands_stream(
    tmp_path: Path, engine: Engine, manager: SessionManager, observed: ObservedOps
) -> None:
    big = make_doc(10_000)
    engine.call(LoadDocument(big, undoable=False))
    path = tmp_path / "big.vtsession"
    manager.open(path)
    writes = observed.replaced
    stream_done = threading.Event()

    def stream() -> None:
        for i in range(20_000):
            engine.submit(SetParam(module=f"lfo{i % 10_000}", param="depth", value=(i % 100) / 100))
            if i % 2000 == 0:
                engine.submit(SetBpm(bpm=100 + i / 1000))
        stream_done.set()

    producer = threading.Thread(target=stream)
    producer.start()
    producer.join(timeout=60)
    assert stream_done.is_set()
    assert engine.wait_applied(timeout=30)
    manager.save(timeout=30)
    assert observed.replaced - writes >= 1
    saved = decode(path.read_bytes(), engine.registry)
    assert saved.version == engine.version and saved.document == engine.snapshot.doc


# ----- status and default resume mode ----------------------------------------------------------


def test_status_describes_the_session_in_one_line(tmp_path: Path, engine: Engine, manager: SessionManager) -> None:
    assert str(manager.status()) == "no session open (engine at version 0); use `open PATH`"
    manager.open(tmp_path / "s.vtsession")
    manager.save()
    status = manager.status()
    assert status.up_to_date and status.saved_version == 0
    assert str(status).startswith(f"session {tmp_path / 's.vtsession'}: version 0 on disk (saved ")
    assert "up to date" in str(status) and "\n" not in str(status)


def test_the_default_session_comes_from_the_environment(tmp_path: Path) -> None:
    assert default_session_path({}) is None
    assert default_session_path({"VTKERNEL_SESSION": str(tmp_path / "x.vt")}) == tmp_path / "x.vt"
    folder = {"VTKERNEL_SESSION_DIR": str(tmp_path)}
    assert default_session_path(folder) == tmp_path / "default.vtsession"
    named = {**folder, "JPY_SESSION_NAME": "/home/me/shows/Friday set.ipynb"}
    assert default_session_path(named) == tmp_path / "Friday_set.vtsession"
    both = {**named, "VTKERNEL_SESSION": str(tmp_path / "x.vt")}
    assert default_session_path(both) == tmp_path / "x.vt"


def test_a_restarted_kernel_resumes_from_the_environment(tmp_path: Path, engine: Engine, reports: Reports) -> None:
    env = {"VTKERNEL_SESSION_DIR": str(tmp_path / "sessions"), "JPY_SESSION_NAME": "show.ipynb"}
    first = SessionManager.from_env(engine, report=reports, environ=env)
    assert first.path == tmp_path / "sessions" / "show.vtsession"
    engine.call(AddModule(name="lfo1", type="lfo"))
    first.close()
    restarted = Engine().start()
    try:
        again = SessionManager.from_env(restarted, report=reports, environ=env)
        assert reports.lines[-1].startswith(f"opened {tmp_path / 'sessions' / 'show.vtsession'}: version 1")
        assert "lfo1" in restarted.snapshot["modules"]
        blocked = SessionManager.from_env(engine, report=reports, environ=env)  # same session, still open
        assert blocked.path is None and "not resumed" in reports.lines[-1] and "already open" in reports.lines[-1]
        again.close()
    finally:
        restarted.stop()
