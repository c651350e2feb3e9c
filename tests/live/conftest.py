"""Fixtures for live-coding tests: a real engine, a stand-in for the kernel's main thread, and editors' saves."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.live import LiveFiles


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = Engine().start()
    yield eng
    eng.stop()


@pytest.fixture
def hits() -> Iterator[types.ModuleType]:
    """A helper module files import to log their side effects: `import vt_live_hits as h; h.log.append(...)`."""
    mod = types.ModuleType("vt_live_hits")
    mod.log = []  # type: ignore[attr-defined]
    sys.modules["vt_live_hits"] = mod
    yield mod
    del sys.modules["vt_live_hits"]


class MainThread:
    """Mimics the kernel's main thread: `schedule` may be called from any thread; the test drains on its own."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self.thread = threading.current_thread()

    def schedule(self, fn: Callable[[], None]) -> None:
        self.queue.put(fn)

    def run_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Run scheduled work until `condition()` holds; fail after `timeout` seconds."""
        assert threading.current_thread() is self.thread
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("timed out waiting for the watched file to apply")
            try:
                fn = self.queue.get(timeout=remaining)
            except queue.Empty:
                continue
            fn()


class Live:
    """A `LiveFiles` wired like the kernel wires it, with reports collected."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.main = MainThread()
        self.reports: list[tuple[str, bool]] = []
        self.files = LiveFiles(
            engine,
            make_vt=lambda path: VT(engine, origin="file"),
            schedule_main=self.main.schedule,
            report=lambda text, is_error, path: self.reports.append((text, is_error)),
        )

    def wait_report(self, since: int, timeout: float = 5.0) -> tuple[str, bool]:
        self.main.run_until(lambda: len(self.reports) > since, timeout)
        return self.reports[since]

    def params(self, name: str) -> dict[str, Any]:
        return dict(self.engine.snapshot.doc.modules[name].params)

    def modules(self) -> set[str]:
        return set(self.engine.snapshot.doc.modules.keys())


@pytest.fixture
def live(engine: Engine) -> Iterator[Live]:
    lv = Live(engine)
    yield lv
    lv.files.close()


# ----- how editors save -----------------------------------------------------


def write_in_place(path: Path, text: str) -> None:
    with open(path, "r+" if path.exists() else "w") as f:
        f.seek(0)
        f.write(text)
        f.truncate()


def atomic_save(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def truncate_then_write(path: Path, text: str) -> None:
    with open(path, "w") as f:  # "w" truncates first: the file is briefly empty
        f.flush()
        os.fsync(f.fileno())
        f.write(text)


def vim_save(path: Path, text: str) -> None:
    backup = path.with_name(path.name + "~")
    os.replace(path, backup)
    path.write_text(text)
    backup.unlink()


SAVES = {"in_place": write_in_place, "atomic": atomic_save, "truncate": truncate_then_write, "vim": vim_save}


@pytest.fixture
def editors() -> dict[str, Callable[[Path, str], None]]:
    """Save functions by style: in_place, atomic (write+rename), truncate (truncate then write), vim (backup-rename)."""
    return SAVES
