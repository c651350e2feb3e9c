"""Start the scheduler process first thing, so it is warm by the kernel's first `play` (SPEC §8, issue 11).

The scheduler process needs 0.15-0.4 s to start (an interpreter and the
engine's imports). Started when the kernel object is built, it was often not
ready when the first cell of a fresh kernel played, and the first note came
that much late. `python -m vtkernel -f ...` calls `start()` before it imports
ipykernel, so the child starts on another core while the kernel imports;
`VTKernel` hands it to its `Runtime` (`take()`: a `vtkernel.handoff.Started`,
the same record the runtime makes of its own children), which waits for its
hello as usual. Spawning costs a few milliseconds of the kernel's start-up
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
from typing import Any

from vtkernel import handoff
from vtkernel.handoff import PAGE_SIZE

DEFAULT_LOOKAHEAD = 0.05  # the child starts with this; the runtime sends the kernel's own at once


def _portable() -> bool:
    return sys.platform == "win32" or os.environ.get("VTKERNEL_PORTABLE", "").strip().lower() not in ("", "0", "false", "no")


_spawned: handoff.Started | None = None


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


def start(avoid: frozenset[int] = frozenset()) -> None:
    """Spawn the scheduler process now (once); never raise (the runtime spawns one itself if this failed).

    `avoid`: the kernel's own ports, not yet bound (`handoff.kernel_ports`); the
    portable hand-off's loopback sockets keep off them.
    """
    global _spawned
    if _spawned is not None or os.environ.get("VTKERNEL_PRESPAWN", "1") == "0":
        return
    if _portable():
        _start_portable(avoid)
        return
    try:
        parent, child = socket.socketpair()
        if hasattr(os, "memfd_create"):
            page_fd = os.memfd_create("vt-scheduler-status", 0)
        else:  # macOS: an unlinked temporary file is the same shared page
            with tempfile.TemporaryFile() as f:
                page_fd = os.dup(f.fileno())
        os.ftruncate(page_fd, PAGE_SIZE)
        stderr = tempfile.TemporaryFile()
        proc = subprocess.Popen(
            scheduler_argv(child.fileno(), DEFAULT_LOOKAHEAD, page_fd),
            pass_fds=(child.fileno(), page_fd),
            close_fds=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=handoff.child_env(),
            start_new_session=True,
        )
        child.close()
    except Exception:
        return
    _spawned = handoff.Started(proc, parent, page_fd, stderr)


def _start_portable(avoid: frozenset[int]) -> None:
    """No inherited descriptors (Windows; VTKERNEL_PORTABLE=1): the child connects back over loopback."""
    global _spawned
    try:
        listener, token = handoff.listen(avoid)
        page_fd, page_path = tempfile.mkstemp(prefix="vt-scheduler-", suffix=".page")
        os.ftruncate(page_fd, PAGE_SIZE)
        stderr = tempfile.TemporaryFile()
        argv = scheduler_argv(0, DEFAULT_LOOKAHEAD, 0)
        argv[3] = handoff.address(listener)
        argv[5] = f"page_path={page_path}"
        proc = subprocess.Popen(
            argv,
            close_fds=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=handoff.child_env(**{handoff.TOKEN_ENV: token, handoff.AVOID_ENV: ",".join(map(str, sorted(avoid)))}),
            start_new_session=sys.platform != "win32",
            creationflags=getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0),
        )
    except Exception:
        return
    # The child connects back later; the runtime's feeder accepts it when it takes this one (`Started.sock`).
    _spawned = handoff.Started(proc, None, page_fd, stderr, (listener, token, page_path))


def take() -> handoff.Started | None:
    """The process `start()` spawned (once), or None."""
    global _spawned
    spawned, _spawned = _spawned, None
    return spawned
