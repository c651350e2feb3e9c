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

Then the five conditions of issue 11, at the receiver (bundles ahead of their
timetag, the worst lateness, missing): idle; a CPU-bound cell; a 1 s
GIL-holding C call; every core saturated by other processes (busy loops,
`os.cpu_count()` of them, at nice 0 and at nice -10), with and without the
real-time priority request, at the default lookahead and at 20 ms; and the
first event after a cold start (a `Runtime` started and played at once; a
fresh kernel whose first cell plays, with the scheduler spawned first thing
or not), with kernel start-up time beside it. Then MIDI send lateness against
the deadline (a null mido backend that only notes the time: no MIDI port
here), idle and during a CPU-bound loop, with the 1 ms spin and without.

    python benchmarks/bench_timing.py [--seconds 1.2] [--repeat 1] [--lookahead 0.05]
                                      [--only child-thread,conditions,cold,midi]

Takes about five minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vtkernel.engine import Engine
from vtkernel.engine.timing.clock import NTP_UNITS, timetag_to_wall
from vtkernel.protocol import parse_command
from vtkernel.runtime import Runtime
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


RESULTS: dict[str, float] = {}  # figures the peers table at the end compares

# Peers measured side by side on this machine (120 bpm, 4 events per beat), from
# ../shared/notes/instrument.md, December 2026: (send jitter p99 idle in ms, % on grid
# during a 1.2 s GIL-holding call).
PEERS = {
    "FoxDot": (3.2, "77.5% (drops events)"),
    "Renardo": (3.5, "74.7% (drops events)"),
    "Sardine": (3.9, "65.8%"),
    "isobar": (0.25, "68.3%"),
}

LOADS: dict[str, Callable[[float], None]] = {
    "idle": load_idle,
    "blocking sleep": load_sleep,
    "CPU-bound Python loop": load_python,
    "1 s C call holding the GIL": load_c_call,
}


def run_once(
    load: Callable[[float], None], seconds: float, *, in_process: bool, lookahead: float, priority: bool = True
) -> dict[str, Any]:
    engine = Engine().start()
    rx = OscReceiver().start()
    runtime = Runtime(engine, lookahead=lookahead, in_process=in_process, priority=priority).start()
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
        "n": len(due),
        "ahead_n": ahead,
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


class BusyProcesses:
    """`n` other programs burning a core each (busy loops), at `nice` (negative needs privilege)."""

    def __init__(self, n: int, nice: int = 0) -> None:
        self.n, self.nice = n, nice
        self.procs: list[subprocess.Popen[bytes]] = []

    def __enter__(self) -> BusyProcesses:
        code = f"import os\ntry:\n    os.nice({self.nice})\nexcept OSError:\n    pass\nwhile True:\n    pass"
        self.procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(self.n)]
        time.sleep(0.5)  # let them start burning
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait()


def saturated(nice: int) -> Callable[[float], None]:
    def load(seconds: float) -> None:
        time.sleep(seconds)  # the load is the BusyProcesses around the run

    load.nice = nice  # type: ignore[attr-defined]
    return load


def conditions(args: argparse.Namespace) -> None:
    """Issue 11's table: ahead of timetag / worst late / missing at the receiver, per condition."""
    cores = os.cpu_count() or 1
    rows: list[tuple[str, str, str, dict[str, Any]]] = []

    def measure(name: str, load: Callable[[float], None], *, lookahead: float, priority: bool, seconds: float, repeat: int, busy: int | None = None) -> None:
        runs = []
        for _ in range(repeat):
            if busy is None:
                runs.append(run_once(load, seconds, in_process=False, lookahead=lookahead, priority=priority))
            else:
                with BusyProcesses(cores, busy):
                    runs.append(run_once(load, seconds, in_process=False, lookahead=lookahead, priority=priority))
        total = sum(r["n"] for r in runs)
        ahead = sum(r["ahead_n"] for r in runs)
        cell = {
            "ahead": ahead / max(1, total),
            "n": total,
            "worst": max(r["worst_late_ms"] for r in runs),
            "missing": sum(r["missing"] for r in runs),
        }
        rows.append((name, f"{lookahead * 1000:.0f} ms", "requested" if priority else "not requested", cell))
        if name.startswith("1 s C call"):
            RESULTS["gil_ahead"] = cell["ahead"]
        print(f"  measured: {name}, lookahead {lookahead * 1000:.0f} ms, priority {priority}", file=sys.stderr)

    la = args.lookahead
    long = max(args.seconds, 5.0)
    measure("idle", load_idle, lookahead=la, priority=True, seconds=long, repeat=1)
    measure("CPU-bound Python loop in the kernel", load_python, lookahead=la, priority=True, seconds=long, repeat=1)
    measure("1 s C call holding the kernel's GIL", load_c_call, lookahead=la, priority=True, seconds=1.0, repeat=3)
    for nice in (0, -10):
        what = f"every core saturated by other processes ({cores} busy loops, nice {nice})"
        for lookahead in (la, 0.02):
            for priority in (True, False):
                measure(what, saturated(nice), lookahead=lookahead, priority=priority, seconds=long, repeat=2, busy=nice)
    print("\n### Bundles ahead of their timetag at the receiver, per condition (issue 11)\n")
    print(f"{BPM:g} bpm, {DIVISION} steps per beat ({1 / PERIOD:.0f} bundles/s), scheduler in its child process.\n")
    print("| condition | lookahead | real-time priority | bundles | ahead of timetag | worst late (ms) | missing |")
    print("|---|---|---|---|---|---|---|")
    for name, lookahead_s, prio, c in rows:
        print(f"| {name} | {lookahead_s} | {prio} | {c['n']} | {c['ahead']:.2%} | {fmt_ms(c['worst'])} | {c['missing']} |")


def cold_runtime(lookahead: float) -> float:
    """A Runtime started and played at once: ms from the play command to the first bundle's timetag."""
    engine = Engine().start()
    rx = OscReceiver().start()
    runtime = Runtime(engine, lookahead=lookahead).start(wait=False)
    try:
        for data in (
            {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [1], "division": DIVISION}},
            {"op": "add_module", "name": "o", "type": "osc_out", "params": {"port": rx.port}},
            {"op": "connect", "src": "s.out", "dst": "o.in"},
        ):
            assert engine.call(parse_command(data)).error is None
        t0 = time.time()
        assert engine.call(parse_command({"op": "play"})).error is None
        first = rx.wait_for(1, timeout=30)[0]
        assert first.timetag is not None
        return (timetag_to_wall(first.timetag) - t0) * 1000.0
    finally:
        runtime.stop()
        rx.stop()
        engine.stop()


FIRST_CELL = """
import time
vt.bpm(240)
vt.module('s', 'seq', steps=[60], division=4)
vt.module('o', 'osc_out', port={port})
vt.connect('s.out', 'o.in')
vt.flush()
t0 = time.time()
vt.play()
print(repr(t0))
"""


def cold_kernel(prespawn: bool, rx: OscReceiver) -> tuple[float, float]:
    """A fresh kernel whose first cell plays: (start-up seconds to ready, ms from play to the first timetag)."""
    from tests.conftest import start_kernel, stop_kernel

    os.environ["VTKERNEL_PRESPAWN"] = "1" if prespawn else "0"
    rx.clear()
    t = time.monotonic()
    k = start_kernel()
    startup = time.monotonic() - t
    try:
        t0 = float(k.ok(FIRST_CELL.format(port=rx.port)).strip())
        first = rx.wait_for(1, timeout=30)[0]
        assert first.timetag is not None
        return startup, (timetag_to_wall(first.timetag) - t0) * 1000.0
    finally:
        stop_kernel(k)
        os.environ.pop("VTKERNEL_PRESPAWN", None)


def cold(args: argparse.Namespace) -> None:
    from vtkernel.kernel.install import install

    prefix = tempfile.mkdtemp(prefix="vtbench")
    install(prefix=prefix)
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    runtime_ms = [cold_runtime(args.lookahead) for _ in range(5)]
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    with OscReceiver() as rx:
        for _ in range(5):  # alternating, so load on the machine hits both alike
            for prespawn in (True, False):
                results[prespawn].append(cold_kernel(prespawn, rx))
    print(f"\n### The first event after a cold start (lookahead {args.lookahead * 1000:.0f} ms; goal: within lookahead + 20 ms)\n")
    print("| start | play -> first timetag, median (max) of 5 | kernel start-up to ready, median |")
    print("|---|---|---|")
    print(f"| `Runtime` started and played at once (engine level) | {statistics.median(runtime_ms):.1f} ms ({max(runtime_ms):.1f}) | - |")
    for prespawn, label in ((True, "scheduler spawned first thing (vtkernel)"), (False, "scheduler spawned by the kernel object (before)")):
        ups = [u for u, _ in results[prespawn]]
        firsts = [f for _, f in results[prespawn]]
        print(f"| fresh kernel, first cell plays, {label} | {statistics.median(firsts):.1f} ms ({max(firsts):.1f}) | {statistics.median(ups):.2f} s |")


def midi_once(load: Callable[[float], None], seconds: float, spin: bool) -> dict[str, Any]:
    """Notes at 240 bpm x 4 through midi_out to the null backend; the scheduler's send-lateness telemetry."""
    os.environ["MIDO_BACKEND"] = "tests.timing.midi_null_backend"
    engine = Engine().start()
    runtime = Runtime(engine).start()
    try:
        if not spin:
            runtime.configure(midi_spin=0.0)
        for data in (
            {"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [60, 62, 64, 65], "division": DIVISION}},
            {"op": "add_module", "name": "m", "type": "midi_out", "params": {}},
            {"op": "connect", "src": "s.out", "dst": "m.in"},
            {"op": "set_bpm", "bpm": BPM},
            {"op": "play"},
        ):
            assert engine.call(parse_command(data)).error is None
        runtime.wait_telemetry(lambda t: (t.get("midi_send_lateness_ms") or {}).get("n", 0) > 8, timeout=20)
        load(seconds)
        tel = runtime.wait_telemetry(lambda t: True)
        return dict(tel["midi_send_lateness_ms"])
    finally:
        runtime.stop()
        engine.stop()
        os.environ.pop("MIDO_BACKEND", None)


def midi(args: argparse.Namespace) -> None:
    seconds = max(args.seconds, 8.0)
    print("\n### MIDI send lateness against the deadline (issue 11; isobar's p99: 0.25 ms idle)\n")
    print(f"Notes at {BPM:g} bpm, {DIVISION} per beat, {seconds:g} s each. Lateness: the time after the send call ")
    print("minus the deadline, per batch of messages due at one time, from the scheduler's telemetry (last 2048).\n")
    print("| load in the kernel process | wait before a deadline | p50 (ms) | p99 (ms) | max (ms) | sends |")
    print("|---|---|---|---|---|---|")
    for load_name, load in (("idle", load_idle), ("CPU-bound Python loop", load_python)):
        for spin in (True, False):
            r = midi_once(load, seconds, spin)
            if spin and load_name == "idle":
                RESULTS["midi_p99"] = r["p99"]
            how = "sleep to 1 ms before, then spin (vtkernel)" if spin else "sleep to the deadline (before)"
            print(f"| {load_name} | {how} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {fmt_ms(r['max'])} | {r['n']} |")
            print(f"  measured: MIDI {load_name}, spin {spin}", file=sys.stderr)


def child_vs_thread(args: argparse.Namespace) -> None:
    default_interval = sys.getswitchinterval()
    rows = []
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.2, help="length of each load")
    ap.add_argument("--repeat", type=int, default=1, help="runs per cell (the table shows medians)")
    ap.add_argument("--lookahead", type=float, default=0.05)
    ap.add_argument("--no-sweep", action="store_true", help="skip the lookahead sweep")
    ap.add_argument("--only", default="child-thread,conditions,cold,midi", help="which tables, comma-separated")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.timing.midi_null_backend, tests.conftest
    t_start = time.monotonic()
    parts = {"child-thread": child_vs_thread, "conditions": conditions, "cold": cold, "midi": midi}
    for name in args.only.split(","):
        parts[name.strip()](args)
    if "midi_p99" in RESULTS and "gil_ahead" in RESULTS:
        print("\n### Beside the peers (their figures: notes/instrument.md, measured side by side on this machine)\n")
        print("| system | send jitter p99, idle | during a GIL-holding call in the host process |")
        print("|---|---|---|")
        print(
            f"| vtkernel (this run: MIDI send lateness p99; OSC bundles ahead during a 1 s call) "
            f"| {RESULTS['midi_p99']:.2f} ms | {RESULTS['gil_ahead']:.1%} ahead of timetag |"
        )
        print("| vtkernel before this issue (scheduler loop send jitter) | 1.4 ms | 100% on grid |")
        for peer, (jitter, gil) in PEERS.items():
            print(f"| {peer} | {jitter:g} ms | {gil} |")
    print(f"\n({time.monotonic() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
