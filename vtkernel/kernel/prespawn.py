"""Start the scheduler process first thing, so it is warm by the kernel's first `play` (SPEC §8, issue 11).

The scheduler process needs 0.15-0.4 s to start (an interpreter and the
engine's imports). Started when the kernel object is built, it was often not
ready when the first cell of a fresh kernel played, and the first note came
that much late. `python -m vtkernel -f ...` calls `start()` before it imports
ipykernel, so the child starts on another core while the kernel imports;
`VTKernel` hands it to its `Runtime` (`take()`), which waits for its hello
as usual. Spawning costs a few milliseconds of the kernel's start-up
(`benchmarks/bench_timing.py` measures both).

This module imports nothing from the engine (that is the point), and it runs
on the kernel's main thread, so the child's parent-death signal is tied to
the process's lifetime. `VTKERNEL_PRESPAWN=0` turns it off.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from typing import IO, Any

PAGE_SIZE = 4096  # the status page (vtkernel.engine.timing.guard)
DEFAULT_LOOKAHEAD = 0.05  # the child starts with this; the runtime sends the kernel's own at once


class Prespawned:
    """A scheduler process started before the engine exists: its process, socket, status page and stderr."""

    def __init__(self, proc: subprocess.Popen[bytes], sock: socket.socket, page_fd: int, stderr: IO[bytes]) -> None:
        self.proc = proc
        self.sock = sock
        self.page_fd = page_fd
        self.stderr = stderr

    def discard(self) -> None:
        self.proc.kill()
        self.proc.wait(5)
        self.sock.close()
        os.close(self.page_fd)
        self.stderr.close()


_spawned: Prespawned | None = None


def scheduler_argv(fd: int, lookahead: float, page_fd: int, **opts: Any) -> list[str]:
    """The command line of a scheduler process (see `vtkernel.engine.timing.scheduler.main`)."""
    return [
        sys.executable,
        "-m",
        "vtkernel.engine.timing.scheduler",
        str(fd),
        repr(lookahead),
        f"page={page_fd}",
        f"parent={os.getpid()}",
        *(f"{key}={value}" for key, value in opts.items()),
    ]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def start() -> None:
    """Spawn the scheduler process now (once); never raise (the runtime spawns one itself if this failed)."""
    global _spawned
    if _spawned is not None or os.environ.get("VTKERNEL_PRESPAWN", "1") == "0" or not hasattr(os, "memfd_create"):
        return
    try:
        parent, child = socket.socketpair()
        page_fd = os.memfd_create("vt-scheduler-status", 0)
        os.ftruncate(page_fd, PAGE_SIZE)
        stderr = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            scheduler_argv(child.fileno(), DEFAULT_LOOKAHEAD, page_fd),
            pass_fds=(child.fileno(), page_fd),
            close_fds=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=child_env(),
            start_new_session=True,
        )
        child.close()
    except Exception:
        return
    _spawned = Prespawned(proc, parent, page_fd, stderr)


def take() -> Prespawned | None:
    """The process `start()` spawned (once), or None."""
    global _spawned
    spawned, _spawned = _spawned, None
    return spawned
