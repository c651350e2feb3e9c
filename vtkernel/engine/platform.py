"""What differs between Linux, macOS and Windows, chosen once at import.

vtkernel uses a few calls that exist only on some systems. Each has a
portable twin, and the choice is made here, once, so the rest of the code
asks for a capability and never for a platform:

| need | Linux | macOS | Windows |
|---|---|---|---|
| a waker another thread can set, that `select` sleeps on | `eventfd` | non-blocking `socketpair` | non-blocking `socketpair` (Windows' `select` takes sockets only) |
| a lock released when the holder dies, even under `kill -9` | `flock` | `flock` | `msvcrt.locking` on one byte |
| is the process that holds a lock alive, and the same process | `/proc` | `psutil` | `psutil` |

`VTKERNEL_PORTABLE=1` in the environment forces the portable twin on
Linux: the socketpair waker, a byte-range lock (`fcntl.lockf`, the POSIX
call with `msvcrt.locking`'s semantics: per process, released at death) and
`psutil` liveness. CI runs the suite once with it set, so every portable
path runs on Linux too (docs/platforms.md says what was verified where).

Owner: nothing here has state beyond the constants; `SelfPipe` follows
the `Waker` rule (one thread sleeps, any thread wakes).
"""

from __future__ import annotations

import os
import socket
import sys

PORTABLE_ENV = "VTKERNEL_PORTABLE"
PORTABLE = os.environ.get(PORTABLE_ENV, "").strip().lower() not in ("", "0", "false", "no")
LINUX = sys.platform.startswith("linux")
WINDOWS = sys.platform == "win32"
MACOS = sys.platform == "darwin"

USE_EVENTFD = LINUX and hasattr(os, "eventfd") and not PORTABLE
USE_FLOCK = not WINDOWS and not PORTABLE
USE_PROC = LINUX and os.path.isdir("/proc") and not PORTABLE
# The scheduler child gets its socket and status page as inherited descriptors (`pass_fds`,
# POSIX only); elsewhere it connects back over loopback with a one-time token and maps the
# page by its file name (`vtkernel.runtime.host`).
USE_INHERITED_FDS = not WINDOWS and not PORTABLE


def describe() -> dict[str, str]:
    """Which twin each capability uses here (for `%vt doctor` and the docs)."""
    lock = "flock" if USE_FLOCK else ("msvcrt.locking" if WINDOWS else "fcntl.lockf (byte range)")
    return {
        "system": sys.platform,
        "waker": "eventfd" if USE_EVENTFD else "socketpair",
        "lock": lock,
        "liveness": "/proc" if USE_PROC else "psutil",
        "scheduler_handoff": "inherited descriptors" if USE_INHERITED_FDS else "loopback connection + named page",
        "forced_portable": "yes" if PORTABLE else "no",
    }


class SelfPipe:
    """A file descriptor that becomes readable when any thread calls `wake`, until `clear`.

    An `eventfd` on Linux; elsewhere (or with `VTKERNEL_PORTABLE=1`) a
    non-blocking socket pair, which `select` accepts on every system. Both
    are close-on-exec, never block a caller, and never poll.
    """

    def __init__(self) -> None:
        self._efd: int | None = None
        self._r: socket.socket | None = None
        self._w: socket.socket | None = None
        if USE_EVENTFD:
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            self._r, self._w = socket.socketpair()
            for s in (self._r, self._w):
                s.setblocking(False)
                s.set_inheritable(False)

    def fileno(self) -> int:
        if self._efd is not None:
            return self._efd
        assert self._r is not None
        return self._r.fileno()

    @property
    def fd(self) -> int:
        return self.fileno()

    def wake(self) -> None:
        try:
            if self._efd is not None:
                os.eventfd_write(self._efd, 1)
            elif self._w is not None:
                self._w.send(b"\0")
        except OSError:  # full (a wake is pending anyway) or closed
            pass

    def clear(self) -> None:
        try:
            if self._efd is not None:
                os.eventfd_read(self._efd)
            elif self._r is not None:
                while self._r.recv(4096):
                    pass
        except OSError:  # nothing to read (BlockingIOError) or closed
            pass

    def close(self) -> None:
        if self._efd is not None:
            try:
                os.close(self._efd)
            except OSError:
                pass
            self._efd = None
        for s in (self._r, self._w):
            if s is not None:
                s.close()


__all__ = [
    "LINUX",
    "MACOS",
    "PORTABLE",
    "PORTABLE_ENV",
    "USE_EVENTFD",
    "USE_FLOCK",
    "USE_INHERITED_FDS",
    "USE_PROC",
    "WINDOWS",
    "SelfPipe",
    "describe",
]
