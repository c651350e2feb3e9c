"""Fixtures for the session tests: real engines, real files, observable writes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import immutables
import pytest

from vtkernel.engine import Engine, Registry, default_registry
from vtkernel.engine.document import Clock, Connections, Document, Module
from vtkernel.session import FileOps, SessionManager

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.fixture
def registry() -> Registry:
    return default_registry()


@pytest.fixture
def engine() -> Iterator[Engine]:
    eng = Engine().start()
    yield eng
    eng.stop()


def make_doc(n: int = 3, *, bpm: float = 120.0) -> Document:
    """A document with `n` lfos, the first two connected."""
    modules = {
        f"lfo{i}": Module("lfo", immutables.Map({"rate": 1.0 + i % 500, "depth": 0.5, "shape": "sine"}))
        for i in range(n)
    }
    connections = {("lfo0.out", "lfo1.rate"): True} if n >= 2 else {}
    return Document(Clock(bpm, False, 4), immutables.Map(modules), Connections(connections))


class Reports:
    """Collects `report` lines from any thread; a test can wait for one."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, line: str) -> None:
        with self._cond:
            self.lines.append(line)
            self._cond.notify_all()

    def wait_for(self, needle: str, timeout: float = 10.0) -> str:
        with self._cond:
            ok = self._cond.wait_for(lambda: any(needle in line for line in self.lines), timeout)
        assert ok, f"no report containing {needle!r}; got {self.lines}"
        return next(line for line in self.lines if needle in line)


class ObservedOps:
    """`FileOps` whose calls can fail on demand and whose replaces can be awaited.

    `fail[name] = OSError(...)` makes every call of that op raise it until removed.
    """

    def __init__(self) -> None:
        self.fail: dict[str, OSError] = {}
        self.calls: list[tuple[str, Any]] = []
        self.replaced = 0
        self._cond = threading.Condition()
        self.before_replace: Callable[[], None] | None = None

    def _guard(self, name: str, arg: Any) -> None:
        self.calls.append((name, arg))
        err = self.fail.get(name)
        if err is not None:
            raise err

    def ops(self) -> FileOps:
        def open_(path: str, flags: int, mode: int) -> int:
            self._guard("open", path)
            return os.open(path, flags, mode)

        def write(fd: int, data: memoryview) -> int:
            self._guard("write", fd)
            return os.write(fd, data)

        def fsync(fd: int) -> None:
            self._guard("fsync", fd)
            os.fsync(fd)

        def replace(src: str, dst: str) -> None:
            self._guard("replace", dst)
            if self.before_replace is not None and ".tmp-" in src and ".tmp-" not in dst:
                self.before_replace()
            os.replace(src, dst)
            with self._cond:
                self.replaced += 1
                self._cond.notify_all()

        def link(src: str, dst: str) -> None:
            self._guard("link", dst)
            os.link(src, dst)

        return FileOps(open=open_, write=write, fsync=fsync, replace=replace, link=link)

    def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Wait until `predicate()` holds, re-checking after every replace."""
        with self._cond:
            assert self._cond.wait_for(predicate, timeout), "condition not reached"


@pytest.fixture
def reports() -> Reports:
    return Reports()


@pytest.fixture
def observed() -> ObservedOps:
    return ObservedOps()


@pytest.fixture
def manager(engine: Engine, reports: Reports, observed: ObservedOps) -> Iterator[SessionManager]:
    mgr = SessionManager(engine, report=reports, autosave_delay=0.05, file_ops=observed.ops())
    yield mgr
    mgr.close()


def python_child(script: str, *args: str) -> subprocess.Popen[str]:
    """Start `python tests/session/<script>` with the repository importable."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, str(HERE / script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
