"""What does the panel's pianoroll cost the hub? (protocol `get_haps`, issue 15)

    python benchmarks/bench_pianoroll.py [--seconds 3]

1. One `haps` reply for a pattern module over 4 cycles, for 1, 4 and 16 voices of a
   3-level-nested pattern: the query alone (the module type's `pattern`, the baseline),
   the reply without and with the SVG, and its size (median of 9).
2. A real `Engine` and `Hub` on an asyncio loop; one panel watches the 16-voice module's
   haps (with SVG) while a slider on that module's `cycle` is dragged at 60 changes/s.
   Baseline in the same run: one fresh pianoroll per delta (HAPS_INTERVAL = 0).

Prints markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import vtkernel.kernel.hub as hub_module
from vtkernel.engine import Engine, default_registry
from vtkernel.kernel.hub import Hub
from vtkernel.pictures import haps_reply, module_haps
from vtkernel.protocol import AddModule, SetParam


def voices(n: int) -> str:
    notes = ["c3", "e3", "g3", "b3"]
    layers = [f"[[bd*{i % 4 + 1} [~ sd:{i}]] <hh*8 cp> [{' '.join(notes[: i % 4 + 1])}]]" for i in range(n)]
    return "[" + ", ".join(layers) + "]"


def median_ms(fn: Any, n: int = 9) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


class Box:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, msg: dict[str, Any]) -> None:
        self.messages.append(msg)


def one_reply(engine: Engine) -> None:
    print("One `haps` reply, 4 cycles (median of 9):\n")
    print("| voices | haps | query (baseline) | reply, data only | reply with SVG | SVG / query | reply size |")
    print("|---|---|---|---|---|---|---|")
    cls = engine.registry.get("pattern")
    for n in (1, 4, 16):
        name = f"v{n}"
        engine.call(AddModule(name=name, type="pattern", params={"pattern": voices(n)}))
        snap = engine.snapshot
        params = dict(snap.doc.modules[name].params.items())
        query = median_ms(lambda p=params: module_haps(cls, p, 4, 0, 4))
        data = median_ms(lambda s=snap, m=name: haps_reply(s.doc, s.version, engine.registry, m, 0, 4))
        drawn = median_ms(lambda s=snap, m=name: haps_reply(s.doc, s.version, engine.registry, m, 0, 4, svg=True))
        msg = haps_reply(snap.doc, snap.version, engine.registry, name, 0, 4, svg=True)
        size = len(json.dumps(msg).encode()) / 1024
        print(f"| {n} | {len(msg['haps'])} | {query:.1f} ms | {data:.1f} ms | {drawn:.1f} ms | {drawn / query:.1f}x | {size:.0f} KiB |")


def drag(engine: Engine, seconds: float, interval: float) -> tuple[int, int, float, float]:
    """(deltas, haps sent, hub CPU in haps per second of drag, wall) with `HAPS_INTERVAL = interval`."""
    hub_module.HAPS_INTERVAL = interval
    spent = [0.0]
    real = hub_module.Hub._send_haps

    def timed(self: Hub, *args: Any) -> None:
        t0 = time.perf_counter()
        real(self, *args)
        spent[0] += time.perf_counter() - t0

    hub_module.Hub._send_haps = timed  # type: ignore[method-assign]
    loop = asyncio.new_event_loop()
    hub = Hub(engine, loop)
    box = Box()
    client = hub.add_client(box, {"shell": "editor"})
    hub.handle(client, {"type": "get_haps", "id": 1, "module": "v16", "cycles": [0, 4], "svg": True, "watch": True})

    async def run() -> None:
        for i in range(int(seconds * 60)):
            engine.submit(SetParam(module="v16", param="cycle", value=4 + (i % 8) / 8), origin="editor")
            await asyncio.sleep(1 / 60)
        await asyncio.sleep(0.5)  # the last change is always sent

    t0 = time.perf_counter()
    loop.run_until_complete(run())
    wall = time.perf_counter() - t0
    hub.close()
    loop.close()
    hub_module.Hub._send_haps = real  # type: ignore[method-assign]
    deltas = sum(1 for m in box.messages if m["type"] == "delta")
    pushed = sum(1 for m in box.messages if m["type"] == "haps" and m["id"] is None)
    return deltas, pushed, spent[0] / wall * 1000, wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    interval = hub_module.HAPS_INTERVAL
    engine = Engine(default_registry()).start()
    try:
        one_reply(engine)
        old = drag(engine, args.seconds, 0.0)
        new = drag(engine, args.seconds, interval)
    finally:
        hub_module.HAPS_INTERVAL = interval
        engine.stop()
    print(f"\nOne panel watching the 16-voice module's pianoroll while its `cycle` is dragged ({args.seconds:.0f} s at 60 changes/s):\n")
    print("| | deltas | pianorolls sent | hub CPU in pianorolls per second of drag |")
    print("|---|---|---|---|")
    print(f"| one per delta (baseline, same run) | {old[0]} | {old[1]} | {old[2]:.0f} ms |")
    print(f"| at most every {interval:g} s, the last change always | {new[0]} | {new[1]} | {new[2]:.0f} ms |")
    print(f"| ratio | | {old[1] / max(1, new[1]):.0f}x fewer | {old[2] / max(new[2], 1e-9):.0f}x less |")


if __name__ == "__main__":
    main()
