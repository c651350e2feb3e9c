"""One kernel per session: real processes, real flock, real SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Reports, python_child

from vtkernel.engine import Engine
from vtkernel.protocol import VTError
from vtkernel.session import Holder, SessionLock, SessionManager


@pytest.fixture
def holder_procs() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def start_holder(procs: list[subprocess.Popen[str]], path: Path, *flags: str) -> dict[str, int]:
    """A kernel stand-in in its own process that opens `path` and keeps it open."""
    proc = python_child("_holder.py", str(path), *flags)
    procs.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, proc.stderr.read() if proc.stderr else "holder died"
    return dict(json.loads(line), proc=len(procs) - 1)


def sigkill(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


# ----- two kernels, one session ---------------------------------------------------


def test_a_second_kernel_gets_session_locked_naming_the_holder(
    tmp_path: Path, engine: Engine, reports: Reports, holder_procs: list[subprocess.Popen[str]]
) -> None:
    path = tmp_path / "show.vtsession"
    held = start_holder(holder_procs, path)
    manager = SessionManager(engine, report=reports)
    with pytest.raises(VTError) as info:
        manager.open(path)
    assert info.value.code == "session_locked"
    assert f"held by pid {held['pid']} on {socket.gethostname()} since " in info.value.message
    assert manager.path is None
    # The holder closes cleanly: the session opens, and nobody calls it a crash.
    proc = holder_procs[held["proc"]]
    proc.communicate("", timeout=10)
    message = manager.open(path)
    assert message.startswith(f"opened {path}: version {held['version']}")
    assert "crash" not in message and "took over" not in message
    manager.close()


def test_a_lock_left_by_a_kill_9_is_taken_over_and_the_crash_reported(
    tmp_path: Path, engine: Engine, reports: Reports, holder_procs: list[subprocess.Popen[str]]
) -> None:
    path = tmp_path / "show.vtsession"
    held = start_holder(holder_procs, path)
    sigkill(holder_procs[held["proc"]])
    manager = SessionManager(engine, report=reports)
    message = manager.open(path)
    assert message.startswith(f"recovered from crash: version {held['version']} saved at ")
    assert f"took over the session from a dead kernel, pid {held['pid']}" in message
    assert engine.snapshot["modules"]["lfo_holder"]["params"]["rate"] == 7.0
    assert engine.version == held["version"]
    manager.close()


def test_a_forked_child_does_not_keep_a_dead_kernels_session_locked(
    tmp_path: Path, engine: Engine, reports: Reports, holder_procs: list[subprocess.Popen[str]]
) -> None:
    path = tmp_path / "show.vtsession"
    held = start_holder(holder_procs, path, "--fork-child")
    assert held["child"] > 0
    try:
        sigkill(holder_procs[held["proc"]])
        manager = SessionManager(engine, report=reports)
        assert "took over the session from a dead kernel" in manager.open(path)  # the child still runs
        manager.close()
    finally:
        os.kill(held["child"], signal.SIGKILL)


def test_the_lock_descriptor_is_closed_in_a_forked_child(tmp_path: Path) -> None:
    lock = SessionLock(tmp_path / "s.vt")
    lock.acquire()
    fd = lock._fd
    assert fd is not None
    pid = os.fork()
    if pid == 0:  # child: the descriptor must be gone, and the parent's lock still held
        code = 0
        try:
            os.fstat(fd)
            code = 1
        except OSError:
            pass
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert lock.held
    with pytest.raises(VTError, match="already open"):
        SessionLock(tmp_path / "s.vt").acquire()
    lock.release()


# ----- one process ----------------------------------------------------------------------


def test_opening_a_session_twice_in_one_process_says_already_open(
    tmp_path: Path, engine: Engine, reports: Reports
) -> None:
    first = SessionManager(engine, report=reports)
    first.open(tmp_path / "s.vt")
    assert first.open(tmp_path / "s.vt").endswith("is already open (version 0 on disk)")
    other = Engine().start()
    try:
        with pytest.raises(VTError) as info:
            SessionManager(other, report=reports).open(tmp_path / "s.vt")
        assert info.value.code == "session_locked" and "already open in this kernel" in info.value.message
    finally:
        other.stop()
        first.close()


def test_a_clean_close_empties_the_lock_file_and_never_deletes_it(tmp_path: Path) -> None:
    lock = SessionLock(tmp_path / "s.vt")
    assert lock.acquire() is None
    text = (tmp_path / "s.vt.lock").read_text()
    assert Holder.parse(text) is not None and Holder.parse(text).pid == os.getpid()  # type: ignore[union-attr]
    lock.release()
    assert (tmp_path / "s.vt.lock").read_text() == ""
    assert lock.acquire() is None  # a clean close leaves nothing to take over
    lock.release()


def test_a_takeover_is_a_crash_only_when_the_recorded_holder_is_dead(tmp_path: Path) -> None:
    lock_file = tmp_path / "s.vt.lock"
    me = Holder.me()
    lock_file.write_text(me.to_json())  # alive (this process) but no longer holding the flock
    lock = SessionLock(tmp_path / "s.vt")
    takeover = lock.acquire()
    assert takeover is not None and not takeover.dead and "left without closing cleanly" in takeover.describe()
    lock.release()

    gone = Holder(dead_pid(), me.host, me.since, me.boot_id, None)
    lock_file.write_text(gone.to_json())
    lock = SessionLock(tmp_path / "s.vt")
    takeover = lock.acquire()
    assert takeover is not None and takeover.dead
    assert takeover.describe() == f"took over the session from a dead kernel, pid {gone.pid}"
    lock.release()


def test_a_reused_pid_does_not_pass_for_the_old_holder(tmp_path: Path) -> None:
    me = Holder.me()
    assert me.is_alive() is True
    assert me.start_time is not None  # /proc on Linux, psutil elsewhere (VTKERNEL_PORTABLE=1)
    impostor = Holder(me.pid, me.host, me.since, me.boot_id, me.start_time + 1.0)
    assert impostor.is_alive() is False
    assert Holder(me.pid, "elsewhere", me.since).is_alive() is None  # another host: cannot tell


def test_a_garbled_lock_file_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "s.vt.lock").write_bytes(b"\xff not json")
    lock = SessionLock(tmp_path / "s.vt")
    assert lock.acquire() is None
    lock.release()


def test_both_liveness_checks_agree_on_the_start_time(tmp_path: Path) -> None:
    """/proc (Linux) and psutil (macOS, Windows, VTKERNEL_PORTABLE=1) must name the same start, or a
    lock file written by one would call a live holder dead in the other."""
    import psutil

    from vtkernel.session import lock as lockmod

    native = lockmod._proc_stat(os.getpid(), 19)
    if native is None:
        pytest.skip("no /proc here")
    boot = lockmod._boot_time()
    assert boot is not None
    from_proc = boot + int(native) / os.sysconf("SC_CLK_TCK")
    assert abs(from_proc - psutil.Process().create_time()) <= lockmod.START_TOLERANCE
