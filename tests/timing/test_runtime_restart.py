"""Restarting the scheduler process (issue 14 #9, #10): the limit, `restart()`, and the transport's beat."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

import vtkernel.runtime.host as runtime_module
from tests.timing.conftest import Rig
from vtkernel.engine.timing.clock import NTP_UNITS
from vtkernel.runtime import Runtime
from vtkernel.testing.osc import Received

BPM = 240.0
DIVISION = 4
PERIOD = 60.0 / BPM / DIVISION  # 62.5 ms between events


def steps_of(received: list[Received], tag0: int) -> list[float]:
    """Each bundle's timetag in grid steps from `tag0` (integers when on the grid)."""
    return [(r.timetag - tag0) / (PERIOD * NTP_UNITS) for r in received if r.timetag is not None]


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def wait_restarted(runtime: Runtime, old_pid: int | None, timeout: float = 15.0) -> None:
    wait_until(lambda: runtime.pid != old_pid and runtime.alive, timeout, "a new scheduler process")


def kill_child(runtime: Runtime) -> int:
    pid = runtime.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_scheduler_that_dies_is_restarted_at_the_transports_beat_on_the_same_grid(rig: Rig) -> None:
    rig.play_seq([1], division=DIVISION, bpm=BPM)
    before = rig.rx.wait_for(16, timeout=10)
    tag0 = before[0].timetag
    assert tag0 is not None
    beat = rig.runtime.wait_telemetry(lambda t: t.get("beat", 0) >= 4)["beat"]
    old = kill_child(rig.runtime)
    wait_restarted(rig.runtime, old)
    n = len(rig.rx.received)
    rig.rx.wait_for(n + 8, timeout=10)
    after = rig.rx.received[n:]
    steps = steps_of(after, tag0)
    # The same grid (beat 0 did not move), further along: the transport continued, it did not start over.
    assert all(abs(k - round(k)) < 1e-3 for k in steps), steps[:5]
    assert min(steps) > beat * DIVISION
    assert rig.runtime.telemetry()["beat"] > beat
    assert all((r.ahead or 0) > 0 for r in after)


def test_restart_replaces_the_process_without_a_gap_or_a_repeat(rig: Rig) -> None:
    rig.play_seq([1], division=DIVISION, bpm=BPM)
    rig.rx.wait_for(8, timeout=10)
    old = rig.runtime.pid
    line = rig.runtime.restart()
    assert "restarted" in line and "beat" in line and rig.runtime.pid != old
    n = len(rig.rx.received)
    rig.rx.wait_for(n + 8, timeout=10)
    got = list(rig.rx.received)
    tag0 = got[0].timetag
    assert tag0 is not None
    steps = [round(k) for k in steps_of(got, tag0)]
    assert steps == list(range(steps[0], steps[0] + len(steps))), "a step was lost or sent twice across the restart"
    assert all((r.ahead or 0) > 0 for r in got)
    assert rig.runtime.stats()["restarts"] == 0  # asked for, not counted against the limit


def test_after_the_restart_limit_restart_brings_the_music_back(rig: Rig) -> None:
    rig.play_seq([1], division=DIVISION, bpm=BPM)
    rig.rx.wait_for(4, timeout=10)
    for _ in range(runtime_module.MAX_RESTARTS):
        wait_restarted(rig.runtime, kill_child(rig.runtime))
    kill_child(rig.runtime)
    wait_until(lambda: any("not restarting it" in r for r in rig.runtime.reports()), what="the give-up report")
    line = next(r for r in rig.runtime.reports() if "not restarting it" in r)
    assert "%vt restart" in line and "Runtime.start()" not in line
    assert not rig.runtime.alive and rig.runtime.state == "given up"
    assert "given up" in rig.runtime.stats()["state"]
    rig.runtime.restart()
    assert rig.runtime.alive
    n = len(rig.rx.received)
    rig.rx.wait_for(n + 4, timeout=10)


def test_an_edit_after_the_limit_tries_again(rig: Rig) -> None:
    rig.play_seq([1], division=DIVISION, bpm=BPM)
    rig.rx.wait_for(4, timeout=10)
    for _ in range(runtime_module.MAX_RESTARTS):
        wait_restarted(rig.runtime, kill_child(rig.runtime))
    kill_child(rig.runtime)
    wait_until(lambda: rig.runtime.state == "given up", what="given up")
    rig.do({"op": "set_param", "module": "s", "param": "steps", "value": [2]})
    n = len(rig.rx.received)
    rig.rx.wait_for(n + 4, timeout=10)
    assert rig.runtime.alive and rig.rx.received[-1].args[0] == 2


def test_the_restart_count_starts_again_after_healthy_running(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_module, "HEALTHY_SECONDS", 0.3)
    rig.play_seq([1], division=DIVISION, bpm=BPM)
    rig.rx.wait_for(4, timeout=10)
    for _ in range(runtime_module.MAX_RESTARTS + 2):
        launched = time.monotonic()
        # Healthy running: events keep arriving for longer than HEALTHY_SECONDS.
        n = len(rig.rx.received)
        rig.rx.wait_for(n + 8, timeout=10)
        wait_until(lambda t=launched: time.monotonic() - t > 0.35, what="healthy running")
        wait_restarted(rig.runtime, kill_child(rig.runtime))
    assert not any("not restarting it" in r for r in rig.runtime.reports())
    assert rig.runtime.stats()["restarts"] <= 1


def test_with_a_warm_spare_a_restart_takes_the_process_that_was_already_waiting() -> None:
    from vtkernel.engine import Engine
    from vtkernel.testing.osc import OscReceiver

    engine = Engine().start()
    rx = OscReceiver().start()
    runtime = Runtime(engine, lookahead=0.05, spare=True).start()
    try:
        rig = Rig(engine, runtime, rx)
        rig.play_seq([1], division=DIVISION, bpm=BPM)
        rx.wait_for(8, timeout=10)
        wait_until(lambda: runtime._spare is not None, what="the spare")
        spare = runtime._spare
        assert spare is not None and spare.proc.poll() is None
        spare_pid = spare.proc.pid
        wait_restarted(runtime, kill_child(runtime))
        assert runtime.pid == spare_pid  # the waiting process took over: nothing started cold
        wait_until(lambda: runtime._spare is not None and runtime._spare.proc.pid != spare_pid, what="a new spare")
        n = len(rx.received)
        after = rx.wait_for(n + 8, timeout=10)[n:]
        tag0 = rx.received[0].timetag
        assert tag0 is not None
        assert all(abs(k - round(k)) < 1e-3 for k in steps_of(after, tag0))
    finally:
        runtime.stop()
        rx.stop()
        engine.stop()
    assert runtime._spare is None  # stop() ended the spare too
