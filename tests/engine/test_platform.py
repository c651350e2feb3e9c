"""The portable twins (vtkernel/engine/platform.py): each works, and VTKERNEL_PORTABLE=1 really selects them."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path

import pytest

from vtkernel.engine import platform
from vtkernel.engine.queue import Waker

REPO = Path(__file__).resolve().parents[2]


def readable(fd: int) -> bool:
    return bool(select.select([fd], [], [], 0)[0])


@pytest.mark.parametrize("eventfd", [True, False], ids=["eventfd", "socketpair"])
def test_a_self_pipe_wakes_select_and_clears(monkeypatch: pytest.MonkeyPatch, eventfd: bool) -> None:
    if eventfd and not hasattr(os, "eventfd"):
        pytest.skip("no eventfd on this system")
    monkeypatch.setattr(platform, "USE_EVENTFD", eventfd)
    pipe = platform.SelfPipe()
    try:
        assert not readable(pipe.fileno())
        for _ in range(1000):  # wakes coalesce, and a full buffer never blocks the waker
            pipe.wake()
        assert readable(pipe.fileno())
        pipe.clear()
        assert not readable(pipe.fileno())
        pipe.clear()  # clearing twice is harmless
    finally:
        pipe.close()
    pipe.wake()  # after close: a no-op, not an exception


def test_the_waker_uses_the_chosen_twin() -> None:
    waker = Waker()
    try:
        assert not waker.wait(0)
        waker.wake()
        assert waker.wait(0)
        waker.clear()
        assert not waker.wait(0.01)
    finally:
        waker.close()


def choices(env: dict[str, str]) -> dict[str, str]:
    code = "import json; from vtkernel.engine import platform; print(json.dumps(platform.describe()))"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the native choices differ off Linux")
def test_the_switch_forces_every_portable_twin_on_linux() -> None:
    native = choices({"VTKERNEL_PORTABLE": ""})
    assert (native["waker"], native["lock"], native["liveness"]) == ("eventfd", "flock", "/proc")
    forced = choices({"VTKERNEL_PORTABLE": "1"})
    assert (forced["waker"], forced["lock"], forced["liveness"]) == ("socketpair", "fcntl.lockf (byte range)", "psutil")
    assert forced["forced_portable"] == "yes"


def test_this_run_uses_what_the_environment_asks_for() -> None:
    """So a CI pass with VTKERNEL_PORTABLE=1 that silently ran the native code would fail here."""
    wanted = os.environ.get("VTKERNEL_PORTABLE", "").strip().lower() not in ("", "0", "false", "no")
    assert platform.PORTABLE is wanted
    if wanted:
        assert not platform.USE_EVENTFD and not platform.USE_FLOCK and not platform.USE_PROC
