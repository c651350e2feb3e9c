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


@pytest.mark.parametrize("inherit", [True, False], ids=["inherited-fds", "loopback-handoff"])
def test_the_scheduler_child_starts_both_ways_and_plays(monkeypatch: pytest.MonkeyPatch, inherit: bool) -> None:
    """Windows cannot pass descriptors to a child: there the child connects back over loopback with a token."""
    import psutil

    from vtkernel.engine import Engine
    from vtkernel.protocol import AddModule, Play
    from vtkernel.runtime import Runtime
    from vtkernel.runtime import host as runtime_module
    from vtkernel.testing.osc import OscReceiver

    if inherit and platform.WINDOWS:
        pytest.skip("no inherited descriptors on Windows")
    monkeypatch.setattr(runtime_module, "USE_INHERITED_FDS", inherit)
    engine = Engine().start()
    rx = OscReceiver().start()
    runtime = Runtime(engine, lookahead=0.05).start()
    try:
        argv = psutil.Process(runtime.pid).cmdline()
        assert any(a.startswith("tcp:127.0.0.1:") for a in argv) is (not inherit), argv
        assert "VTKERNEL_SCHEDULER_TOKEN" not in " ".join(argv)  # never on the command line
        engine.call(AddModule(name="s", type="seq", params={"steps": [60]}))
        engine.call(AddModule(name="o", type="osc_out", params={"port": rx.port}))
        from vtkernel.protocol import Connect

        engine.call(Connect(src="s.out", dst="o.in"))
        engine.call(Play())
        got = rx.wait_for(4, timeout=10)
        assert len(got) >= 4 and all(m.ahead is not None and m.ahead > 0 for m in got[:4])
    finally:
        runtime.stop()
        rx.stop()
        engine.stop()
