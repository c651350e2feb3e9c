"""Does autosaving a 10,000-module document slow the engine down?

    python benchmarks/bench_sessions.py [--seconds 2.5] [--rounds 5]

A 10,000-module document is loaded into a real engine. In each phase a
producer sends one `set_param` every millisecond with `engine.call` (submit
and wait for the outcome) and a timing thread sleeps to absolute 1 ms
deadlines. Phases, interleaved over several rounds so that machine noise
hits all of them alike:

- baseline: no session;
- autosave 1 s: a bound session with the default autosave delay;
- autosave 0.05 s: a stress case, the saver writing almost continuously.

Reported (medians over rounds, and the ratio to the baseline of the same run):

- command latency p50/p99: `engine.call` round trip, submit to outcome;
- engine apply+publish p50/p99: time inside the engine thread per command
  (`Engine.stats()`), i.e. the publish cost;
- timer lateness p50/p99: how late a 1 kHz sleeper in the same process wakes
  (the GIL pressure the saver adds to every thread of the kernel);
- saves: how many times the file was written during the phase.

Then the cost of one save of the document on this disk, on the saver thread.
Runs in under a minute.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import immutables

from vtkernel.engine import Engine, LoadDocument
from vtkernel.engine.document import Clock, Document, Module
from vtkernel.protocol import SetParam
from vtkernel.session import SessionManager, SessionStore
from vtkernel.session.format import Encoder

MODULES = 10_000
PERIOD = 0.001


def big_document(n: int = MODULES) -> Document:
    modules = {
        f"m{i}": Module("lfo", immutables.Map({"rate": 1.0 + i % 500, "depth": 0.5, "shape": "sine"})) for i in range(n)
    }
    return Document(Clock(), immutables.Map(modules), immutables.Map())


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def run_phase(engine: Engine, seconds: float, counter: list[int]) -> dict[str, float]:
    latencies: list[float] = []
    lateness: list[float] = []
    stop = threading.Event()

    def ticker() -> None:
        deadline = time.perf_counter()
        while not stop.is_set():
            deadline += PERIOD
            delay = deadline - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            lateness.append(max(0.0, time.perf_counter() - deadline) * 1e6)

    tick = threading.Thread(target=ticker, name="bench-timer")
    tick.start()
    end = time.perf_counter() + seconds
    deadline = time.perf_counter()
    while time.perf_counter() < end:
        i = counter[0] = counter[0] + 1
        cmd = SetParam(module=f"m{(i * 7919) % MODULES}", param="rate", value=1.0 + (i % 997) * 0.25)
        t0 = time.perf_counter()
        outcome = engine.call(cmd)
        latencies.append((time.perf_counter() - t0) * 1e6)
        assert outcome.error is None, outcome.error
        deadline += PERIOD
        delay = deadline - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    stop.set()
    tick.join()
    stats = engine.stats()
    return {
        "lat_p50": pct(latencies, 0.5),
        "lat_p99": pct(latencies, 0.99),
        "apply_p50": float(stats["apply_us_p50"]),
        "apply_p99": float(stats["apply_us_p99"]),
        "late_p50": pct(lateness, 0.5),
        "late_p99": pct(lateness, 0.99),
    }


def save_costs(folder: Path, engine: Engine) -> dict[str, float]:
    """One save of the document, step by step, as the saver thread does it."""
    store = SessionStore(folder / "cost.vtsession", engine.registry)
    doc = engine.snapshot.doc
    cold, warm, write = [], [], []
    for i in range(5):
        enc = Encoder()
        t0 = time.perf_counter()
        enc.encode(i, doc)
        cold.append(time.perf_counter() - t0)
        doc = Document(
            doc.clock, doc.modules.set("m1", Module("lfo", immutables.Map({"rate": 2.0 + i}))), doc.connections
        )
        t0 = time.perf_counter()
        data = enc.encode(i, doc)
        warm.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        store.save(data, i)
        write.append(time.perf_counter() - t0)
    return {
        "encode, cold (ms)": statistics.median(cold) * 1e3,
        "encode, one module changed (ms)": statistics.median(warm) * 1e3,
        "write + fsync + rotate + rename + dir fsync (ms)": statistics.median(write) * 1e3,
        "file size (KB)": len(data) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.5, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--switch-interval", type=float, default=0.001, help="sys.setswitchinterval; 0.001 is what the kernel sets"
    )
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)

    engine = Engine().start()
    engine.call(LoadDocument(big_document(), undoable=False))
    counter = [0]
    phases = {"baseline": None, "autosave 1 s": 1.0, "autosave 0.05 s": 0.05}
    results: dict[str, list[dict[str, float]]] = {name: [] for name in phases}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run_phase(engine, 0.5, counter)  # warm up
        for r in range(args.rounds):
            for name, delay in phases.items():
                manager = None
                if delay is not None:
                    manager = SessionManager(engine, report=print, autosave_delay=delay)
                    manager.open(folder / f"r{r}-{delay}.vtsession")
                result = run_phase(engine, args.seconds, counter)
                result["saves"] = 0 if manager is None else manager.status().writes
                if manager is not None:
                    manager.close()
                results[name].append(result)
        costs = save_costs(folder, engine)
    engine.stop()

    rows = [
        ("command latency p50 (µs)", "lat_p50"),
        ("command latency p99 (µs)", "lat_p99"),
        ("engine apply+publish p50 (µs/cmd)", "apply_p50"),
        ("engine apply+publish p99 (µs/cmd)", "apply_p99"),
        ("1 kHz timer lateness p50 (µs)", "late_p50"),
        ("1 kHz timer lateness p99 (µs)", "late_p99"),
        ("saves during the phase", "saves"),
    ]
    names = list(phases)
    print(
        f"\n{MODULES} modules, {args.rounds} rounds x {args.seconds:g} s per phase, medians over rounds, "
        f"switch interval {args.switch_interval * 1000:g} ms (the kernel's; `--switch-interval 0.005` for Python's default)\n"
    )
    print("| metric | " + " | ".join(f"{n}" + ("" if n == "baseline" else " | ratio") for n in names) + " |")
    print("|---|" + "---|" * (2 * len(names) - 1))
    for label, key in rows:
        base = statistics.median(r[key] for r in results["baseline"])
        cells = [f"{base:.0f}"]
        for n in names[1:]:
            value = statistics.median(r[key] for r in results[n])
            ratio = "" if key == "saves" or base == 0 else f"{value / base:.2f}"
            cells += [f"{value:.0f}", ratio]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n| one save of the document | median |\n|---|---|")
    for label, value in costs.items():
        print(f"| {label} | {value:.1f} |")


if __name__ == "__main__":
    main()
