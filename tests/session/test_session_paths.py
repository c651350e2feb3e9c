"""Crafted session paths: links, FIFOs, foreign files, and a disk that fills and empties (issue 14 #11-13).

The rule (vtkernel/session/store.py): a session is a regular file. A link at
the session's own name, a FIFO or a directory is refused before anything is
read or written; a file that is not a session file is never moved aside or
replaced; links in the directories above are followed.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import ObservedOps, Reports, make_doc

from vtkernel.engine import Engine
from vtkernel.protocol import AddModule, SetParam, VTError
from vtkernel.session import SessionManager, SessionStore
from vtkernel.session.format import Encoder

PASSWD = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"


def a_valid_session(path: Path, engine: Engine, version: int = 3) -> None:
    SessionStore(path, engine.registry).save(Encoder().encode(version, make_doc(2)), version)


def test_open_through_a_symlink_is_refused_and_the_target_is_untouched(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_bytes(PASSWD)
    # The attack: a valid backup beside the target made recovery move the target aside.
    a_valid_session(secret.with_name("passwd.1"), engine)
    link = tmp_path / "show.vtsession"
    link.symlink_to(secret)
    with pytest.raises(VTError) as info:
        manager.open(link)
    assert info.value.code == "io_error"
    assert "symbolic link" in info.value.message and "\n" not in info.value.message
    assert secret.read_bytes() == PASSWD
    assert sorted(os.listdir(secret.parent)) == ["passwd", "passwd.1"]  # no .corrupt, no .lock beside the target
    assert not (tmp_path / "show.vtsession.lock").exists()
    assert manager.path is None and engine.version == 0


def test_save_as_onto_a_symlink_is_refused(tmp_path: Path, engine: Engine, manager: SessionManager) -> None:
    secret = tmp_path / "passwd"
    secret.write_bytes(PASSWD)
    link = tmp_path / "s.vtsession"
    link.symlink_to(secret)
    with pytest.raises(VTError) as info:
        manager.save(link)
    assert info.value.code == "io_error" and "symbolic link" in info.value.message
    assert secret.read_bytes() == PASSWD and link.is_symlink()


def test_a_foreign_file_at_the_session_name_is_never_moved_or_replaced(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    path = tmp_path / "notes.vtsession"
    path.write_bytes(PASSWD)
    a_valid_session(path.with_name("notes.vtsession.1"), engine)
    for attempt in (lambda: manager.open(path), lambda: manager.save(path)):
        with pytest.raises(VTError) as info:
            attempt()
        assert info.value.code == "session_invalid" and "not a vtkernel session file" in info.value.message
    assert path.read_bytes() == PASSWD
    assert not path.with_name("notes.vtsession.corrupt").exists()
    assert manager.path is None


def test_a_damaged_session_file_is_still_moved_aside_and_recovered(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    """The foreign-file rule must not stop the recovery it was written beside."""
    path = tmp_path / "s.vtsession"
    store = SessionStore(path, engine.registry)
    for v in (3, 4):
        store.save(Encoder().encode(v, make_doc(v)), v)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 3])
    message = manager.open(path)
    assert "moved it to s.vtsession.corrupt" in message and engine.version == 3


def test_a_symlinked_directory_above_the_session_is_followed(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    real = tmp_path / "data"
    real.mkdir()
    (tmp_path / "shows").symlink_to(real)
    message = manager.open(tmp_path / "shows" / "s.vtsession")
    assert message.startswith(f"created {real / 's.vtsession'}")
    assert (real / "s.vtsession").is_file()


def test_a_lock_file_that_is_a_symlink_is_not_followed(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    secret = tmp_path / "passwd"
    secret.write_bytes(PASSWD)
    (tmp_path / "s.vtsession.lock").symlink_to(secret)
    with pytest.raises(VTError) as info:
        manager.open(tmp_path / "s.vtsession")
    assert info.value.code == "io_error" and "lock file" in info.value.message
    assert secret.read_bytes() == PASSWD


@pytest.mark.timeout(20)
def test_open_on_a_fifo_answers_at_once_instead_of_blocking(
    tmp_path: Path, engine: Engine, manager: SessionManager
) -> None:
    fifo = tmp_path / "s.vtsession"
    os.mkfifo(fifo)
    result: list[BaseException | str] = []
    worker = threading.Thread(target=lambda: result.append(_capture(lambda: manager.open(fifo))), daemon=True)
    worker.start()
    worker.join(10.0)
    # Before the fix the open() of the FIFO never returned: unblock it so the test can end.
    if worker.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        worker.join(5.0)
        pytest.fail("open of a FIFO blocked the calling thread")
    (error,) = result
    assert isinstance(error, VTError) and error.code == "io_error" and "FIFO" in error.message


def test_load_of_a_directory_or_fifo_is_one_clean_error(tmp_path: Path, engine: Engine, manager: SessionManager) -> None:
    (tmp_path / "d.vtsession").mkdir()
    os.mkfifo(tmp_path / "f.vtsession")
    for name, kind in (("d.vtsession", "directory"), ("f.vtsession", "FIFO")):
        with pytest.raises(VTError) as info:
            manager.load(tmp_path / name)
        assert kind in info.value.message and "\n" not in info.value.message


def _capture(fn) -> BaseException | str:  # type: ignore[no-untyped-def]
    try:
        return str(fn())
    except BaseException as exc:
        return exc


def test_a_save_lands_within_about_a_second_of_disk_space_returning(
    tmp_path: Path, engine: Engine, reports: Reports, observed: ObservedOps
) -> None:
    """Issue 14 #13: the retry backoff doubled to 30 s, so a long outage cost up to 30 s more after it ended."""
    manager = SessionManager(engine, report=reports, autosave_delay=0.05, file_ops=observed.ops())
    try:
        path = tmp_path / "s.vtsession"
        manager.open(path)
        engine.call(AddModule(name="lfo1", type="lfo"))
        manager.save()
        attempts: list[float] = []
        seen = threading.Condition()

        def attempt(p: str, flags: int, mode: int) -> int:
            with seen:
                attempts.append(time.monotonic())
                seen.notify_all()
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        store = manager._binding.store  # type: ignore[union-attr]
        healthy = store.ops
        store.ops = dataclasses.replace(healthy, open=attempt)
        engine.call(SetParam(module="lfo1", param="rate", value=5.0))
        with seen:  # 7 failed attempts: an outage long enough for the old backoff to reach 16 s
            assert seen.wait_for(lambda: len(attempts) >= 7, timeout=12.0), attempts
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert max(gaps) <= 2.5, gaps
        store.ops = healthy  # space is back
        reports.wait_for("saved again", timeout=5.0)
        assert SessionStore(path, engine.registry).load().document.modules["lfo1"].params["rate"] == 5.0  # type: ignore[union-attr]
    finally:
        manager.close()


def test_a_replace_refused_by_a_readers_handle_is_retried_on_windows_only(tmp_path: Path, engine: Engine) -> None:
    """Windows refuses to replace a file another process has open; POSIX never does, so there it is real."""
    from vtkernel.engine import platform
    from vtkernel.session import FileOps

    refusals = [2]

    def replace(src: str, dst: str) -> None:
        if refusals[0] and ".tmp-" in src:
            refusals[0] -= 1
            raise PermissionError(13, "The process cannot access the file because it is being used by another process")
        os.replace(src, dst)

    store = SessionStore(tmp_path / "s.vtsession", engine.registry, ops=FileOps(replace=replace))
    data = Encoder().encode(1, make_doc(2))
    if platform.WINDOWS or platform.PORTABLE:
        store.save(data, 1)
        assert refusals == [0] and SessionStore(tmp_path / "s.vtsession", engine.registry).load() is not None
    else:
        with pytest.raises(VTError) as info:
            store.save(data, 1)
        assert info.value.code == "io_error" and refusals == [1]
