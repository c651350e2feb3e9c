"""What playing patterns and building output messages cost the scheduler (issues 11 and 15).

    python benchmarks/bench_outputs.py

1. The renderer's work per wake-up with 32 modules playing at 120 bpm, woken
   as the scheduler loop wakes it (at each next onset minus the lookahead,
   and at least 30 times a second for telemetry), each module to its own
   sink. Baseline: 32 `seq` modules. The `pattern` rows use a small drum
   pattern and issue 15's 16-voice, 3-level nested pattern. CPU is the
   render time over the music's duration.
2. Building one event's OSC bundle (the sink's mapping plus the encoding),
   per sink and layout; baseline: `osc_out` with a plain number.
3. Encoding one `/dirt/play` message: python-osc's builder against the
   scheduler's own encoder (`oscwire`, the same bytes).

Everything runs in this process on explicit times: no sockets, no sleeping.
"""

from __future__ import annotations

import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

from pythonosc.osc_message_builder import OscMessageBuilder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vtkernel.engine.moduletype import Event
from vtkernel.engine.patterns.tree import validate_json
from vtkernel.engine.schema import BUILTIN_TYPES
from vtkernel.engine.sinks import OscOut, SuperDirt, dirt_args, dirt_controls
from vtkernel.engine.timing import oscwire
from vtkernel.engine.timing.clock import WallClock
from vtkernel.engine.timing.outputs import osc_bundle
from vtkernel.engine.timing.render import Renderer
from vtkernel.patterns import s

MODULES = 32
SECONDS = 8.0  # of music, at 120 bpm: 4 cycles of 4 beats
NESTED16 = "[" + ", ".join(f"[a{i} [b{i} c{i}]] <d{i} [e{i} f{i}]>" for i in range(16)) + "]"


class Encode:
    """An `Outputs` that builds each bundle (the real encoding) and drops it."""

    def __init__(self) -> None:
        self.bytes = 0

    def send_osc(self, module: str, host: str, port: int, address: str, timetag: int, args: Any) -> None:
        self.bytes += len(osc_bundle(timetag, address, args))

    def send_midi(self, *args: Any) -> None:
        pass

    def record(self, *args: Any) -> None:
        pass

    def report(self, *args: Any) -> None:
        pass


def render_run(kind: str, params: dict[str, Any], sink: str) -> tuple[float, float, float, int]:
    """Median and p99 ms per wake-up, CPU % of the music's time, wake-ups."""
    modules: dict[str, Any] = {}
    conns = []
    for i in range(MODULES):
        modules[f"p{i}"] = {"type": kind, "params": params}
        modules[f"o{i}"] = {"type": sink, "params": {"port": 9}}
        conns.append({"src": f"p{i}.out", "dst": f"o{i}.in"})
    r = Renderer({c.type_name: c for c in BUILTIN_TYPES}, Encode(), lookahead=0.05, wall=WallClock(1e9))
    r.reset({"clock": {"bpm": 120.0, "playing": True, "meter": 4}, "modules": modules, "connections": conns}, 1, now=0.0)
    costs = []
    t = 0.0
    while t < SECONDS:
        t0 = time.perf_counter()
        wake = r.advance(t)
        costs.append(time.perf_counter() - t0)
        t = min(t + 1 / 30, wake if wake is not None and wake > t else t + 1 / 30)
    costs.sort()
    return (
        statistics.median(costs) * 1e3,
        costs[min(len(costs) - 1, int(0.99 * len(costs)))] * 1e3,
        100 * sum(costs) / SECONDS,
        len(costs),
    )


def event(value: Any) -> Event:
    return Event(1.0, 100.5, 1e9, 1 << 62, value, "drums", 0.5, 0.25, 0.25, 0.5)


def per_event_us(sink: Any, params: dict[str, Any], value: Any, n: int = 20000) -> float:
    out = Encode()
    ev = event(value)
    best = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            sink.emit(params, ev, out)
        best.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(best)


def main() -> int:
    rows = [
        ("32 `seq` (baseline)", "seq", {"steps": [60, 62, None, 64], "division": 4}, "osc_out"),
        ('32 `pattern` `s("bd*2 [~ sd] <hh cp>")`', "pattern", {"pattern": validate_json(s("bd*2 [~ sd] <hh cp>")), "cycle": 0.0}, "superdirt"),
        ("32 `pattern`, 16 voices, 3 levels (issue 15)", "pattern", {"pattern": validate_json(NESTED16), "cycle": 0.0}, "osc_out"),
    ]
    print("### Renderer work per wake-up, 32 modules at 120 bpm (4 cycles)\n")
    print("| patch | wake-ups | median ms | p99 ms | CPU % of real time | median vs baseline |")
    print("|---|---|---|---|---|---|")
    base = None
    for label, kind, params, sink in rows:
        med, p99, cpu, wakes = render_run(kind, params, sink)
        base = med if base is None else base
        print(f"| {label} | {wakes} | {med:.3f} | {p99:.3f} | {cpu:.1f} | {med / base:.1f}x |")
    print()
    osc, dirt = OscOut(), SuperDirt()
    osc.name = dirt.name = "o"
    osc_p = {"host": "127.0.0.1", "port": 9, "address": "/vt", "args": ()}
    layout_p = {**osc_p, "address": "/{s}", "args": ("freq", "{freq}", "n", "{n}", "amp", 0.2)}
    dirt_p = {"host": "127.0.0.1", "port": 9, "orbit": 0}
    fields = {"s": "bd", "n": 3, "freq": 440.0, "gain": 0.9, "pan": 0.5, "speed": 1.0}
    cases = [
        ("`osc_out`, a plain number (baseline)", osc, osc_p, 60),
        ("`osc_out`, every field as name/value pairs", osc, osc_p, fields),
        ("`osc_out`, `/{s}` and a 6-item layout", osc, layout_p, fields),
        ("`superdirt`, 6 fields (+ cps, cycle, delta, orbit, _id_)", dirt, dirt_p, fields),
        ("`superdirt`, `s: \"bd:3\"`, a note name", dirt, dirt_p, {"s": "bd:3", "note": "c4"}),
    ]
    print("### One event's bundle: mapping plus OSC encoding\n")
    print("| sink | us per event | vs baseline |")
    print("|---|---|---|")
    base_us = None
    for label, sink, params, value in cases:
        us = per_event_us(sink, params, value)
        base_us = us if base_us is None else base_us
        print(f"| {label} | {us:.1f} | {us / base_us:.1f}x |")
    print()
    print("### Encoding one `/dirt/play` message (11 name/value pairs)\n")
    print("| encoder | us per message | vs python-osc |")
    print("|---|---|---|")
    args = dirt_args(dirt_controls(event(fields), 0, "drums"))
    ref = encode_us(lambda: python_osc_bundle(1 << 62, "/dirt/play", args))
    ours = encode_us(lambda: oscwire.bundle(1 << 62, "/dirt/play", args))
    print(f"| python-osc `OscMessageBuilder` (baseline) | {ref:.1f} | 1.0x |")
    print(f"| `vtkernel.engine.timing.oscwire` (what the scheduler uses) | {ours:.1f} | {ours / ref:.2f}x |")
    return 0


def python_osc_bundle(timetag: int, address: str, args: list[Any]) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    msg = builder.build().dgram
    return b"#bundle\0" + struct.pack(">Qi", timetag, len(msg)) + msg


def encode_us(fn: Any, n: int = 20000) -> float:
    runs = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(runs)


if __name__ == "__main__":
    sys.exit(main())
