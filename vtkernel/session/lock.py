"""One kernel per session: a lock on `NAME.lock`, held for the kernel's lifetime.

- `fcntl.flock(LOCK_EX | LOCK_NB)` on `NAME.lock` (Linux, macOS). The
  system releases it when the holder dies, even under `kill -9`, so a dead
  kernel's lock is simply taken. On Windows the same is a non-blocking
  `msvcrt.locking` of one byte far past the file's text (so the holder's
  name stays readable); with `VTKERNEL_PORTABLE=1` on Linux, `fcntl.lockf`
  of that byte, the POSIX twin of Windows' semantics (per process,
  released at death). `vtkernel.engine.platform` chooses once.
- Whether the recorded holder is alive, and is the same process (a pid
  can be reused): `/proc` on Linux, `psutil` elsewhere and when portable.
  Both compare the process's start time in seconds since the epoch.
- The holder writes its pid, host, boot id, process start time and the time
  it took the lock into the file, for the error a second kernel gets
  ("held by pid N on HOST since T"). A clean release empties the file, so
  text left in a lock we could take means the previous holder did not close
  cleanly: it crashed, if it is really dead (same host and boot, pid gone or
  reused). Only then is it called a crash.
- The lock file is never deleted: another process may hold it or be about
  to open it, and deleting it would let two kernels lock two different inodes.
- Forked children must not keep the session locked after the kernel dies:
  `os.register_at_fork(after_in_child=...)` closes the descriptor in every
  child (closing, not unlocking: the lock is shared with the parent). The
  descriptor is `O_CLOEXEC`, so exec'd processes never get it.
- Opening the same session twice in one process is refused with "already
  open", not a deadlock: flock locks of one process on two descriptors
  would conflict with each other.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vtkernel.engine.platform import USE_FLOCK, USE_PROC, WINDOWS
from vtkernel.protocol import VTError

if WINDOWS:
    import msvcrt
else:
    import fcntl

LOCK_OFFSET = 1 << 30  # the byte a range lock covers: far past the holder's text, which stays readable

# Locks held by this process, by resolved session path. Guarded by _held_lock,
# except in a freshly forked child (one thread only), which just drops them.
_held: dict[str, SessionLock] = {}
_held_lock = threading.Lock()


def _close_in_child() -> None:
    global _held_lock
    _held_lock = threading.Lock()  # another thread may have held it at fork time
    for lock in list(_held.values()):
        lock._forget_in_child()
    _held.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, where there is no fork
    os.register_at_fork(after_in_child=_close_in_child)


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a session lock, as written in the lock file."""

    pid: int
    host: str
    since: float  # time.time() when the lock was taken
    boot_id: str | None = None
    start_time: float | None = None  # the process's start (epoch seconds), to tell a reused pid apart

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {format_time(self.since)}"

    def is_alive(self) -> bool | None:
        """True/False when it can be told from here; None for a process on another host."""
        if self.host != socket.gethostname():
            return None
        boot = _boot_id()
        if self.boot_id and boot and self.boot_id != boot:
            return False  # the machine rebooted since
        alive = _exists(self.pid)
        if alive is not True:
            return alive
        if _is_zombie(self.pid):
            return False  # killed and not yet reaped by its parent: it holds nothing and never runs again
        if self.start_time is not None:
            started = _start_time(self.pid)
            if started is not None and abs(started - self.start_time) > START_TOLERANCE:
                return False  # the pid was reused by another process
        return True

    def to_json(self) -> str:
        return json.dumps(
            {
                "pid": self.pid,
                "host": self.host,
                "since": self.since,
                "boot_id": self.boot_id,
                "start_time": self.start_time,
            }
        )

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        try:
            data: Any = json.loads(text)
            pid = data["pid"]
            if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
                return None
            started = data.get("start_time")
            return cls(
                pid,
                str(data.get("host", "?")),
                float(data.get("since", 0.0)),
                data.get("boot_id") if isinstance(data.get("boot_id"), str) else None,
                float(started) if isinstance(started, (int, float)) and not isinstance(started, bool) else None,
            )
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    @classmethod
    def me(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), time.time(), _boot_id(), _start_time(os.getpid()))


@dataclass(frozen=True)
class Takeover:
    """A lock that was free but still named a holder: the previous kernel did not close cleanly."""

    previous: Holder
    dead: bool  # the previous holder is really gone (a crash); False: alive or unknown

    def describe(self) -> str:
        if self.dead:
            return f"took over the session from a dead kernel, pid {self.previous.pid}"
        return f"took over a lock that {self.previous.describe()} left without closing cleanly (it no longer holds it)"


class SessionLock:
    """The lock on one session file (`PATH.lock`).

    Owner: the thread that opens the session (the kernel's main thread, or
    whichever thread the SessionManager serializes calls on) calls `acquire`
    and `release`; the at-fork hook runs in forked children only.
    """

    def __init__(self, session_path: str | os.PathLike[str]) -> None:
        session = Path(os.path.abspath(os.path.expanduser(os.fspath(session_path))))
        self.session_path = session
        self.path = session.with_name(session.name + ".lock")
        self._key = str(session.parent.resolve() / session.name)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> Takeover | None:
        """Take the lock or raise `session_locked`. Returns a `Takeover` if the last holder left it uncleanly."""
        with _held_lock:
            if self._key in _held:
                raise VTError(
                    "session_locked", f"{self.session_path} is already open in this kernel (pid {os.getpid()})"
                )
            fd = self._open_and_lock()
            try:
                previous = Holder.parse(_read_text(fd))
                me = Holder.me()
                _write_text(fd, me.to_json() + "\n")
            except OSError as exc:
                os.close(fd)
                raise VTError("io_error", f"cannot write the lock file {self.path}: {exc.strerror}") from None
            self._fd = fd
            _held[self._key] = self
        if previous is None:
            return None
        return Takeover(previous, previous.is_alive() is False)

    def _open_and_lock(self) -> int:
        try:
            # Never follow a link: the holder's name is written into this file.
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.path, flags | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOINHERIT", 0), 0o644)
        except OSError as exc:
            raise VTError("io_error", f"cannot open the lock file {self.path}: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise VTError("io_error", f"the lock file {self.path} is not a regular file; remove it")
        try:
            _try_lock(fd)
        except BlockingIOError:
            text = _read_text(fd)
            if not text.strip():  # the holder may be between flock and writing its name
                time.sleep(0.05)
                text = _read_text(fd)
            holder = Holder.parse(text)
            if holder is not None and holder.is_alive() is False and _wait_for_lock(fd):
                return fd  # a holder that was just killed: its last threads released the flock
            os.close(fd)
            raise VTError("session_locked", self._locked_message(holder)) from None
        except OSError as exc:
            os.close(fd)
            raise VTError("io_error", f"cannot lock {self.path}: {exc.strerror}") from None
        return fd

    def _locked_message(self, holder: Holder | None) -> str:
        name = self.session_path
        if holder is None:
            return f"{name} is open in another kernel (no holder recorded in {self.path.name})"
        if holder.is_alive() is False:
            pids = _pids_holding(self.path)
            who = f" (held now by pid {', '.join(map(str, pids))})" if pids else ""
            return (
                f"{name} is still locked by a process that inherited the lock from kernel pid {holder.pid} "
                f"on {holder.host}, which is dead{who}: stop that process and open again"
            )
        return f"{name} is open in another kernel: held by {holder.describe()}"

    def release(self) -> None:
        """Clear the holder text (a clean close) and unlock. The file itself stays."""
        with _held_lock:
            fd, self._fd = self._fd, None
            if _held.get(self._key) is self:
                del _held[self._key]
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            os.fsync(fd)
        except OSError:
            pass  # the next holder will call it an unclean close: a wrong warning, not a wrong state
        finally:
            os.close(fd)  # closing releases the flock

    def _forget_in_child(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.close(fd)  # not flock(LOCK_UN): the lock is shared with the parent
            except OSError:
                pass

    def __repr__(self) -> str:
        return f"<SessionLock {self.path} {'held' if self.held else 'free'}>"


def format_time(t: float) -> str:
    try:
        return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return "an unknown time"


def _try_lock(fd: int) -> None:
    """Take the lock without waiting; BlockingIOError if another process holds it."""
    try:
        if USE_FLOCK:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        elif WINDOWS:
            os.lseek(fd, LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, LOCK_OFFSET, os.SEEK_SET)
    except OSError as exc:
        if isinstance(exc, BlockingIOError) or exc.errno in (errno.EACCES, errno.EAGAIN, getattr(errno, "EDEADLOCK", -1)):
            raise BlockingIOError(errno.EAGAIN, "the lock is held") from None
        raise


def _read_text(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 4096).decode("utf-8", "replace")  # no pread: Windows has none
    except OSError:
        return ""


def _write_text(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode())
    os.fsync(fd)


def _boot_id() -> str | None:
    if not USE_PROC:
        try:
            import psutil

            return f"boot-{psutil.boot_time():.0f}"
        except Exception:
            return None
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


DYING_HOLDER_WAIT = 1.0  # seconds to wait for a killed holder's flock to be released


def _wait_for_lock(fd: int) -> bool:
    """Retry the flock for a moment: a process killed just now may still be tearing down."""
    deadline = time.monotonic() + DYING_HOLDER_WAIT
    while time.monotonic() < deadline:
        time.sleep(0.02)
        try:
            _try_lock(fd)
            return True
        except BlockingIOError:
            continue
        except OSError:
            return False
    return False


START_TOLERANCE = 0.05  # seconds: the start time is computed from clock ticks on Linux


def _exists(pid: int) -> bool | None:
    """Whether a process with this pid exists (None: cannot tell)."""
    if not USE_PROC or WINDOWS:
        try:
            import psutil

            return bool(psutil.pid_exists(pid))
        except Exception:
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    except OSError:
        return None
    return True


def _is_zombie(pid: int) -> bool:
    """Killed and not yet reaped by its parent."""
    if not USE_PROC:
        try:
            import psutil

            return psutil.Process(pid).status() in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
        except Exception:
            return False
    return _proc_stat(pid, 0) in ("Z", "X")


def _start_time(pid: int) -> float | None:
    """When the process started, in epoch seconds (rounded to 10 ms), or None."""
    if not USE_PROC:
        try:
            import psutil

            return round(psutil.Process(pid).create_time(), 2)
        except Exception:
            return None
    ticks = _proc_stat(pid, 19)
    boot = _boot_time()
    if ticks is None or boot is None:
        return None
    try:
        return round(boot + int(ticks) / os.sysconf("SC_CLK_TCK"), 2)
    except (ValueError, OSError):
        return None


def _proc_stat(pid: int, field: int) -> str | None:
    """One field of /proc/PID/stat after the command name (0 is the state letter)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2 :].split()[field]
    except (OSError, ValueError, IndexError):
        return None


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def _pids_holding(path: Path, limit: int = 5) -> list[int]:
    """Processes with `path` open (Linux /proc scan, best effort, error path only)."""
    target = str(path.resolve())
    found: list[int] = []
    if not USE_PROC:
        return found
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return found
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    found.append(pid)
                    break
            except OSError:
                continue
        if len(found) >= limit:
            break
    return found


__all__ = ["Holder", "SessionLock", "Takeover", "format_time"]
