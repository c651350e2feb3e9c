"""Timing benchmark: is the clock on time while the kernel's Python is busy?

For each load in this process (idle, a blocking sleep, a CPU-bound Python
loop, a ~1 s C call that holds the GIL) and each `sys.setswitchinterval`
(default 5 ms, tuned 1 ms), it plays a 64-events-per-second pattern to a
UDP receiver and measures:

- tick lateness (p50 / p99 / max, ms): how late the scheduler woke after
  its planned time (the scheduler's own telemetry);
- ahead: the share of the events due during the load that arrived *before*
  their OSC timetag (arrival times from the kernel, `SO_TIMESTAMPNS`, so a
  stalled receiver thread does not distort them); a missing event counts
  as not ahead.

Each cell is measured twice in the same run: with the scheduler in a child
process (what vtkernel does) and on a thread of this process (the baseline).
The same `Scheduler` code runs in both; only the process differs.

    python benchmarks/bench_timing.py [--seconds 1.2] [--repeat 1] [--lookahead 0.05]

Takes about a minute on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from vtkernel.engine import Engine
from vtkernel.engine.runtime import Runtime
from vtkernel.engine.timing.clock import NTP_UNITS, timetag_to_wall
from vtkernel.protocol import parse_command
from vtkernel.testing.osc import OscReceiver

BPM = 240.0
DIVISION = 16  # 64 events per second
PERIOD = 60.0 / BPM / DIVISION


def load_idle(seconds: float) -> None:
    time.sleep(seconds)


def load_sleep(seconds: float) -> None:
    time.sleep(seconds)  # a cell blocked in a sleep: releases the GIL


def load_python(seconds: float) -> None:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1


def load_c_call(seconds: float) -> None:
    sum(range(int(5.5e7 * seconds)))  # one C call: holds the GIL throughout (~1 s per 5.5e7 here)


LOADS: dict[str, Callable[[float], None]] = {
    "idle": load_idle,
    "blocking sleep": load_sleep,
    "CPU-bound Python loop": load_python,
    "1 s C call holding the GIL": load_c_call,
}


def run_once(load: Callable[[float], None], seconds: float, *, in_process: bool, lookahead: float) -> dict[str, Any]:
    engine = Engine().start()
    rx = OscReceiver().start()
    runtime = Runtime(engine, lookahead=lookahead, in_process=in_process).start()
    try:
        for data in (
            {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [1], "division": DIVISION}},
            {"op": "add_module", "name": "o", "type": "osc_out", "params": {"port": rx.port}},
            {"op": "connect", "src": "s.out", "dst": "o.in"},
            {"op": "set_bpm", "bpm": BPM},
            {"op": "play"},
        ):
            assert engine.call(parse_command(data)).error is None
        runtime.wait_synced()
        time.sleep(0.3)
        start = time.time()
        load(seconds)
        end = time.time()
        time.sleep(0.2)
        engine.call(parse_command({"op": "stop"}))
        time.sleep(lookahead + 0.1)
        telemetry = runtime.wait_telemetry(lambda t: not t.get("playing", True), timeout=5)
    finally:
        runtime.stop()
        rx.stop()
        engine.stop()
    got = [r for r in rx.received if r.timetag is not None]
    tag0 = got[0].timetag
    assert tag0 is not None
    # Every grid point due during the load (and one lookahead after it) should have arrived.
    first = max(0, int((start - timetag_to_wall(tag0)) / PERIOD) + 1)
    last = int((end + lookahead - timetag_to_wall(tag0)) / PERIOD)
    arrived = {round((r.timetag - tag0) / (PERIOD * NTP_UNITS)): r for r in got if r.timetag is not None}
    due = range(first, last + 1)
    ahead = sum(1 for k in due if k in arrived and (arrived[k].ahead or 0) > 0)
    worst = max((-(arrived[k].ahead or 0) for k in due if k in arrived), default=0.0)
    lat = telemetry["tick_lateness_ms"]
    return {
        "p50": lat["p50"],
        "p99": lat["p99"],
        "max": lat["max"],
        "ahead": ahead / max(1, len(due)),
        "missing": sum(1 for k in due if k not in arrived),
        "worst_late_ms": max(0.0, worst * 1000),
    }


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.2, help="length of each load")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell (the table shows medians)")
    ap.add_argument("--lookahead", type=float, default=0.05)
    ap.add_argument("--no-sweep", action="store_true", help="skip the lookahead sweep")
    args = ap.parse_args()

    default_interval = sys.getswitchinterval()
    rows = []
    t_start = time.monotonic()
    for interval_name, interval in (("default 5 ms", default_interval), ("tuned 1 ms", 0.001)):
        sys.setswitchinterval(interval)
        for load_name, load in LOADS.items():
            cell = {}
            for mode, in_process in (("child", False), ("thread", True)):
                runs = [
                    run_once(load, args.seconds, in_process=in_process, lookahead=args.lookahead)
                    for _ in range(args.repeat)
                ]
                cell[mode] = median_of(runs)
            rows.append((load_name, interval_name, cell))
            print(f"  measured: {load_name}, switch interval {interval_name}", file=sys.stderr)
    sys.setswitchinterval(default_interval)

    print(f"\n### Scheduler timing: child process vs in-process thread (lookahead {args.lookahead * 1000:.0f} ms)\n")
    print(
        f"{BPM:g} bpm, {DIVISION} steps per beat ({1 / PERIOD:.0f} events/s); median of {args.repeat} run(s) per cell.\n"
    )
    print(
        "| load in the kernel process | switch interval "
        "| child: tick lateness p50 / p99 / max (ms) | child: ahead of timetag "
        "| thread: tick lateness p50 / p99 / max (ms) | thread: ahead of timetag | max lateness thread / child |"
    )
    print("|---|---|---|---|---|---|---|")
    for load_name, interval_name, cell in rows:
        c, t = cell["child"], cell["thread"]
        ratio = (t["max"] / c["max"]) if c["max"] else float("inf")
        print(
            f"| {load_name} | {interval_name} "
            f"| {fmt_ms(c['p50'])} / {fmt_ms(c['p99'])} / {fmt_ms(c['max'])} | {c['ahead']:.1%} "
            f"| {fmt_ms(t['p50'])} / {fmt_ms(t['p99'])} / {fmt_ms(t['max'])} | {t['ahead']:.1%} "
            f"| {ratio:.1f}x |"
        )

    if not args.no_sweep:
        print("\n### Lookahead needed by the child process during a CPU-bound Python loop\n")
        print("| lookahead | ahead of timetag | worst late (ms) | tick lateness max (ms) |")
        print("|---|---|---|---|")
        for lookahead in (0.005, 0.01, 0.02, 0.05):
            r = run_once(load_python, args.seconds, in_process=False, lookahead=lookahead)
            print(
                f"| {lookahead * 1000:.0f} ms | {r['ahead']:.1%} | {fmt_ms(r['worst_late_ms'])} | {fmt_ms(r['max'])} |"
            )
    print(f"\n({time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
