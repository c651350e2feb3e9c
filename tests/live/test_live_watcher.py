"""`LiveFiles`: real files, real saves, real watchdog; work runs on the (test's) main thread."""

from __future__ import annotations

import threading
import types
from pathlib import Path

import pytest
from watchdog.events import (
    DirCreatedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
)

from vtkernel.api import VT
from vtkernel.protocol import VTError

FIRST = 'vt.module("l", "lfo", rate=2)\n'


@pytest.mark.parametrize("style", ["in_place", "atomic", "truncate", "vim"])
def test_every_kind_of_editor_save_applies_once(tmp_path: Path, live, editors, hits, style):
    patch = tmp_path / "patch.py"
    patch.write_text("import vt_live_hits as hits\nhits.log.append(1)\n" + FIRST)
    assert live.files.watch(str(patch)).startswith("watching")
    assert live.params("l")["rate"] == 2.0
    n = len(live.reports)
    editors[style](patch, "import vt_live_hits as hits\nhits.log.append(1)\n" + FIRST.replace("rate=2", "rate=3"))
    text, is_error = live.wait_report(n)
    assert not is_error and "applied" in text
    assert live.params("l")["rate"] == 3.0
    assert hits.log == [1]  # the unchanged statement did not run again


def test_file_work_runs_only_on_the_main_thread(tmp_path: Path, live, hits):
    patch = tmp_path / "patch.py"
    patch.write_text("import threading, vt_live_hits as hits\nhits.log.append(threading.current_thread())\n")
    live.files.watch(str(patch))
    n = len(live.reports)
    patch.write_text("import threading, vt_live_hits as hits\nhits.log += [threading.current_thread()]\n")
    live.wait_report(n)
    assert hits.log == [threading.current_thread()] * 2


def test_a_broken_save_is_reported_and_the_next_good_save_applies(tmp_path: Path, live):
    patch = tmp_path / "patch.py"
    patch.write_text(FIRST)
    live.files.watch(str(patch))
    before = live.engine.snapshot
    n = len(live.reports)
    patch.write_text(FIRST + "vt.module('m', 'lfo'\n")
    text, is_error = live.wait_report(n)
    assert is_error and text.startswith("patch.py, line 2: SyntaxError")
    assert live.engine.snapshot is before
    patch.write_text(FIRST + "vt.module('m', 'lfo')\n")
    text, is_error = live.wait_report(n + 1)
    assert not is_error and live.modules() == {"l", "m"}


def test_a_save_without_changes_runs_nothing(tmp_path: Path, live, hits):
    patch, sentinel = tmp_path / "patch.py", tmp_path / "sentinel.py"
    patch.write_text("import vt_live_hits as hits\nhits.log.append(1)\n")
    sentinel.write_text("x = 0\n")
    live.files.watch(str(patch))
    live.files.watch(str(sentinel))
    patch.write_text(patch.read_text())  # an editor's save of an unmodified buffer
    sentinel.write_text("x = 1\n")  # saved after: once it applied, patch.py's save was handled
    text, _ = live.wait_report(0)
    assert text.startswith("sentinel.py") and len(live.reports) == 1
    assert hits.log == [1]


def test_unwatch_stops_re_runs(tmp_path: Path, live):
    patch, sentinel = tmp_path / "patch.py", tmp_path / "sentinel.py"
    patch.write_text(FIRST)
    sentinel.write_text('vt.module("s", "lfo")\n')
    live.files.watch(str(patch))
    live.files.watch(str(sentinel))
    assert "stopped watching" in live.files.unwatch(str(patch))
    assert live.files.watched() == [str(sentinel.resolve())]
    patch.write_text(FIRST.replace("rate=2", "rate=9"))
    sentinel.write_text('vt.module("s", "lfo", rate=4)\n')  # saved after: applies after patch.py would have
    live.main.run_until(lambda: live.params("s")["rate"] == 4.0)
    assert live.params("l")["rate"] == 2.0 and "l" in live.modules()  # unwatched: its modules stay
    with pytest.raises(VTError):
        live.files.unwatch(str(patch))


def test_two_files_at_once_each_own_their_modules(tmp_path: Path, live):
    one, two = tmp_path / "one.py", tmp_path / "two.py"
    one.write_text('vt.module("a", "lfo")\n')
    two.write_text('vt.module("b", "lfo")\n')
    live.files.watch(str(one))
    live.files.watch(str(two))
    one.write_text('vt.module("a2", "lfo")\n')
    two.write_text('vt.module("b", "lfo", rate=5)\n')
    live.main.run_until(lambda: live.modules() == {"a2", "b"} and live.params("b")["rate"] == 5.0)


def test_cell_made_modules_survive_every_save(tmp_path: Path, live):
    cell = VT(live.engine)
    cell.module("cellmade", "lfo", rate=3)
    cell.flush()
    patch = tmp_path / "patch.py"
    patch.write_text(FIRST + 'vt.connect("l.out", "cellmade.rate")\n')
    live.files.watch(str(patch))
    patch.write_text('vt.module("other", "lfo")\n')
    live.main.run_until(lambda: live.modules() == {"cellmade", "other"})
    assert live.params("cellmade")["rate"] == 3.0


def test_watching_survives_delete_and_re_create(tmp_path: Path, live):
    patch = tmp_path / "patch.py"
    patch.write_text(FIRST)
    live.files.watch(str(patch))
    patch.unlink()
    text, is_error = live.wait_report(0)
    assert "is gone" in text and not is_error and live.modules() == {"l"}  # a missing file is not an empty one
    patch.write_text(FIRST.replace("rate=2", "rate=6"))
    live.main.run_until(lambda: live.params("l")["rate"] == 6.0)


def test_an_emptied_file_removes_its_modules(tmp_path: Path, live):
    patch = tmp_path / "patch.py"
    patch.write_text(FIRST)
    live.files.watch(str(patch))
    patch.write_text("")
    live.main.run_until(lambda: live.modules() == set())


def test_saves_during_a_busy_main_thread_coalesce_into_the_newest(tmp_path: Path, live, hits):
    patch, sentinel = tmp_path / "patch.py", tmp_path / "sentinel.py"
    patch.write_text("import vt_live_hits as hits\nhits.log.append(0)\n")
    sentinel.write_text("x = 0\n")
    live.files.watch(str(patch))
    live.files.watch(str(sentinel))
    patch.write_text("import vt_live_hits as hits\nhits.log.append(1)\n")
    held = live.main.queue.get(timeout=5)  # scheduled, but the kernel is busy in a long cell
    for i in (2, 3):
        patch.write_text(f"import vt_live_hits as hits\nhits.log.append({i})\n")
    sentinel.write_text("x = 1\n")  # settles after the saves above
    sentinel_fn = live.main.queue.get(timeout=5)
    assert live.main.queue.empty()  # one pending run per file, however many saves
    held()  # the cell ends: the newest text applies, once
    sentinel_fn()
    assert hits.log == [0, 3]


def test_the_first_run_error_is_reported_and_the_file_stays_watched(tmp_path: Path, live):
    patch = tmp_path / "patch.py"
    patch.write_text('vt.module("l", "lfo", rate=-1)\n')
    summary = live.files.watch(str(patch))
    assert "first run failed" in summary
    text, is_error = live.reports[0]
    assert is_error and text.startswith("patch.py, line 1: [invalid_value]")
    patch.write_text(FIRST)
    live.main.run_until(lambda: "l" in live.modules())


def test_watching_a_missing_file_is_a_clear_error(tmp_path: Path, live):
    with pytest.raises(VTError) as info:
        live.files.watch(str(tmp_path / "nope.py"))
    assert info.value.code == "io_error"


def test_latency_is_recorded(tmp_path: Path, live):
    patch = tmp_path / "patch.py"
    patch.write_text(FIRST)
    live.files.watch(str(patch))
    patch.write_text(FIRST.replace("rate=2", "rate=3"))
    live.main.run_until(lambda: live.params("l")["rate"] == 3.0)
    stats = live.files.stats()
    assert stats["saves_applied"] == 1 and 0 < stats["latency_ms_p50"] < 2000


def test_a_watched_path_replaced_by_a_directory_is_reported_and_nothing_is_removed(tmp_path: Path, live):
    """Issue 14 #16: the directory's events were dropped, or it read as an empty file (which removes the patch)."""
    patch = tmp_path / "patch.py"
    patch.write_text(FIRST)
    live.files.watch(str(patch))
    patch.unlink()
    patch.mkdir()
    live.main.run_until(lambda: any("is now a directory" in text for text, _ in live.reports))
    text, is_error = next((t, e) for t, e in live.reports if "is now a directory" in t)
    assert is_error and "the engine keeps its last state" in text and "\n" not in text
    assert live.modules() == {"l"}
    patch.rmdir()
    patch.write_text(FIRST.replace("rate=2", "rate=5"))
    live.main.run_until(lambda: live.modules() == {"l"} and live.params("l")["rate"] == 5.0)


OBSERVER_SHAPES = {
    # What each watchdog observer reports for one editor save of DIR/patch.py (docs/platforms.md).
    "inotify (Linux), atomic save": lambda d, p: [FileMovedEvent(f"{d}/.patch.py.tmp1", p)],
    "inotify (Linux), in place": lambda d, p: [FileModifiedEvent(p), FileModifiedEvent(p), FileClosedEvent(p)],
    "FSEvents (macOS), coalesced": lambda d, p: [FileCreatedEvent(p), FileModifiedEvent(p)],
    "FSEvents (macOS), atomic save": lambda d, p: [FileMovedEvent(f"{d}/.patch.py.tmp1", p), FileModifiedEvent(p)],
    "ReadDirectoryChangesW (Windows), replace": lambda d, p: [
        FileDeletedEvent(p),
        FileMovedEvent(f"{d}/patch.py.tmp1", p.upper()),
        FileModifiedEvent(p.upper()),
    ],
    "a directory created at the path": lambda d, p: [DirCreatedEvent(p)],
}


@pytest.mark.parametrize("shape", list(OBSERVER_SHAPES))
def test_every_observers_event_shapes_reach_the_settler_for_the_watched_path(
    shape: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handler matches events by path, whatever the observer; the settler debounces them into one save.

    Windows compares names case-insensitively: `normcase` is made to lower-case here, as it does there.
    """
    from vtkernel.live import watcher as w

    if "Windows" in shape:
        monkeypatch.setattr(w.os.path, "normcase", lambda s: s.lower())
    real = str(tmp_path / "patch.py")
    noticed: list[str] = []
    owner = types.SimpleNamespace(
        _paths={w._match_key(real): real}, _settler=types.SimpleNamespace(notice=noticed.append)
    )
    handler = w._Handler(owner)  # type: ignore[arg-type]
    for event in OBSERVER_SHAPES[shape](str(tmp_path), real):
        handler.on_any_event(event)
    handler.on_any_event(FileModifiedEvent(str(tmp_path / "other.py")))  # not watched
    assert noticed and set(noticed) == {real}
