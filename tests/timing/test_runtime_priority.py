"""The scheduler process asks for real-time priority and says what it got (SPEC §8, issue 11)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.timing.conftest import Rig
from vtkernel.engine import Engine
from vtkernel.runtime import Runtime


def task_priorities(pid: int) -> dict[int, tuple[int, int]]:
    """Each thread of `pid`: (scheduling policy, real-time priority), from /proc."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        # Fields after the name start at 3 (state); rt_priority is field 40, policy 41.
        out[int(task.name)] = (int(fields[41 - 3]), int(fields[40 - 3]))
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_scheduler_runs_at_real_time_priority_and_its_watchdog_one_above(rig: Rig) -> None:
    tel = rig.runtime.wait_telemetry(lambda t: "priority" in t)
    if not tel["priority"].startswith("SCHED_"):
        pytest.skip(f"real-time priority not permitted here ({tel['priority']})")
    assert rig.runtime.stats()["priority"] == tel["priority"]
    pid = rig.runtime.pid
    assert pid is not None
    tasks = task_priorities(pid)
    policy, level = tasks[pid]  # the main thread runs the clock and the user code
    assert policy in (1, 2) and f"{level}" in tel["priority"]  # SCHED_FIFO or SCHED_RR
    # A runaway module on the main thread cannot starve the thread that interrupts it.
    assert [lv for tid, (pol, lv) in tasks.items() if tid != pid and pol == policy and lv > level]


def test_without_the_request_it_runs_at_normal_priority_and_says_so() -> None:
    engine = Engine().start()
    runtime = Runtime(engine, priority=False).start()
    try:
        tel = runtime.wait_telemetry(lambda t: "priority" in t)
        assert tel["priority"] == "normal (not requested)"
        assert runtime.pid is not None and task_priorities(runtime.pid)[runtime.pid] == (0, 0)
    finally:
        runtime.stop()
        engine.stop()


UNPRIVILEGED = textwrap.dedent(
    """
    import sys
    sys.path[:0] = {path!r}
    from vtkernel.engine import Engine
    from vtkernel.runtime import Runtime
    from vtkernel.testing.osc import OscReceiver
    from vtkernel.protocol import parse_command

    engine = Engine().start()
    rx = OscReceiver().start()
    runtime = Runtime(engine).start()
    for data in (
        {{"op": "add_module", "name": "s", "type": "seq", "params": {{"steps": [1]}}}},
        {{"op": "add_module", "name": "o", "type": "osc_out", "params": {{"port": rx.port}}}},
        {{"op": "connect", "src": "s.out", "dst": "o.in"}},
        {{"op": "play"}},
    ):
        assert engine.call(parse_command(data)).error is None
    rx.wait_for(4)
    print(runtime.wait_telemetry(lambda t: "priority" in t)["priority"])
    runtime.stop()
    """
)


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv (util-linux) to drop CAP_SYS_NICE")
def test_where_it_is_not_permitted_it_falls_back_plays_and_says_so() -> None:
    done = subprocess.run(
        [
            "setpriv",
            "--inh-caps=-sys_nice",
            "--bounding-set=-sys_nice",
            sys.executable,
            "-c",
            UNPRIVILEGED.format(path=[p for p in sys.path if p]),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "normal (not permitted)"
