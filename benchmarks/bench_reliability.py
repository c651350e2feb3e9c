"""Reliability: what misbehaving user code and a dying scheduler cost the music (issue 14 #7-#10).

Each attack plays a healthy pattern (16 bundles/s into a UDP receiver) beside
a module class registered as a user would, whose pattern misbehaves (the
same classes as `tests/timing/test_watchdog.py`), or kills the scheduler
process from outside. Over the 4 s after the attack starts it measures:

- whether it held: the bad module is named in a one-line report and muted,
  and the healthy pattern plays on;
- the time from the attack to that report;
- scheduler restarts, and the healthy bundles missing or late (after their
  timetag) at the receiver in those 4 s (missing = grid steps with no bundle).

    python benchmarks/bench_reliability.py
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.timing import test_watchdog as faults
from vtkernel.engine import Engine
from vtkernel.engine.timing.clock import NTP_UNITS
from vtkernel.protocol import parse_command
from vtkernel.runtime import Runtime
from vtkernel.testing.osc import OscReceiver

BPM = 240.0
DIVISION = 4
PERIOD = 60.0 / BPM / DIVISION
WINDOW = 4.0

ATTACKS: list[tuple[str, Callable[..., Any] | None, str]] = [
    ("pattern returns a NaN beat (#7)", faults.nan_beat, "nan"),
    ("pattern returns an infinite beat (#7)", faults.inf_beat, "inf"),
    ("pattern returns a string beat (#7)", faults.str_beat, "'soon'"),
    ("pattern returns a malformed onset (#7)", faults.not_a_pair, "(beat, value)"),
    ("pattern raises (#7)", faults.raises, "ZeroDivisionError"),
    ("pattern loops forever (#8)", faults.loops_forever, "time budget"),
    ("pattern loops and swallows the interrupt (#8)", faults.swallows_the_interrupt, "time budget"),
    ("pattern sleeps for an hour (#8)", faults.sleeps, "time budget"),
    ("pattern yields forever (#8)", faults.yields_forever, "onsets"),
    ("pattern allocates until refused (#8)", faults.allocates, "MemoryError"),
    ("pattern holds the GIL in one C call (#8)", faults.holds_the_gil, "did not return"),
    ("scheduler process killed (SIGKILL) from outside (#9, #10)", None, "restarting"),
    ("the same, with a warm spare process (`Runtime(spare=True)`, the kernel's)", None, "restarting"),
    ("pattern holds the GIL in one C call, with a warm spare", faults.holds_the_gil, "did not return"),
]


def attack(name: str, behaviour: Callable[..., Any] | None, words: str) -> dict[str, Any]:
    engine = Engine()
    if behaviour is not None:
        engine.registry.register(faults.bad_class(behaviour))
    engine.start()
    rx = OscReceiver().start()
    runtime = Runtime(engine, memory_mb=512, stuck_seconds=1.0, spare="spare" in name).start()
    try:
        commands = [
            {"op": "add_module", "name": "good", "type": "seq", "params": {"steps": [faults.GOOD], "division": DIVISION}},
            {"op": "add_module", "name": "o", "type": "osc_out", "params": {"port": rx.port}},
            {"op": "connect", "src": "good.out", "dst": "o.in"},
            {"op": "set_bpm", "bpm": BPM},
            {"op": "play"},
        ]
        for data in commands:
            assert engine.call(parse_command(data)).error is None
        runtime.wait_synced()
        rx.wait_for(8, timeout=10)
        while runtime.spare and runtime._spare is None:  # the spare starts once the first child runs
            time.sleep(0.01)
        time.sleep(0.5 if runtime.spare else 0.0)  # and says hello
        t0 = time.monotonic()
        start_wall = time.time()
        if behaviour is None:
            assert runtime.pid is not None
            os.kill(runtime.pid, signal.SIGKILL)
        else:
            for data in ({"op": "add_module", "name": "b", "type": "bad"}, {"op": "connect", "src": "b.out", "dst": "o.in"}):
                assert engine.call(parse_command(data)).error is None
        reported = None
        while time.monotonic() - t0 < WINDOW:
            if reported is None and any(words in r for r in runtime.reports()):
                reported = time.monotonic() - t0
            time.sleep(0.005)
        end_wall = time.time()
        reports = runtime.reports()
        stats = runtime.stats()
    finally:
        runtime.stop()
        rx.stop()
        engine.stop()
    good = [r for r in rx.received if r.args and r.args[0] == faults.GOOD and r.timetag is not None]
    tag0 = good[0].timetag
    assert tag0 is not None
    def step(r: Any) -> int:
        return round((r.timetag - tag0) / (PERIOD * NTP_UNITS))
    def wall(k: int) -> float:
        return tag0 / NTP_UNITS - 2_208_988_800 + k * PERIOD
    due = [k for k in range(0, step(good[-1]) + 1) if start_wall <= wall(k) <= end_wall]
    got = {step(r): r for r in good}
    missing = sum(1 for k in due if k not in got)
    late = sum(1 for k in due if k in got and (got[k].ahead or 0) <= 0)
    line = next((r for r in reports if words in r), "")
    return {
        "held": reported is not None and "\n" not in line and len(due) - missing > 0,
        "to_report": reported,
        "restarts": stats["restarts"],
        "due": len(due),
        "missing": missing,
        "late": late,
        "line": line,
    }


def main() -> int:
    print("\n### Misbehaving user code in the scheduler process (issue 14 #7-#10)\n")
    print(
        f"A healthy pattern at {1 / PERIOD:.0f} bundles/s beside the attack; the {WINDOW:g} s after it starts; "
        "time budget 200 ms per call, a stuck tick is killed after 1 s here (2 s by default).\n"
    )
    print("| attack | held | attack -> one-line report | restarts | healthy bundles due | missing | late |")
    print("|---|---|---|---|---|---|---|")
    lines = []
    for name, behaviour, words in ATTACKS:
        r = attack(name, behaviour, words)
        when = "-" if r["to_report"] is None else f"{r['to_report'] * 1000:.0f} ms"
        print(f"| {name} | {'yes' if r['held'] else 'NO'} | {when} | {r['restarts']} | {r['due']} | {r['missing']} | {r['late']} |")
        lines.append(r["line"])
        print(f"  measured: {name}", file=sys.stderr)
    print("\nThe reports, as the user sees them:\n")
    for line in lines:
        print(f"- `{line}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
