"""Save -> engine changed latency of a watched file, with the real watcher (debounce included).

For each scenario the benchmark saves the file ~30 times (one param edited per
save) and measures from just before the save's first write to the moment the
engine applies the version that contains it (`Change.time`, taken on the
engine thread as it drains the command). The kernel's main thread is mimicked by a queue drained
on this thread, as in the tests. Prints markdown.

    python benchmarks/bench_live.py
"""

from __future__ import annotations

import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.live import LiveFiles
from vtkernel.live.watcher import DEBOUNCE

SAVES = 30


def atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def in_place(path: Path, text: str) -> None:
    path.write_text(text)


def patch_text(n_statements: int, rate: float) -> str:
    lines = ["import math", f"vt.module('l0', 'lfo', rate={rate!r})"]
    for i in range(1, n_statements - 1):
        lines.append(f"vt.module('l{i}', 'lfo', rate={1 + i % 50}.0, depth=0.5)" if i % 2 else f"x{i} = math.sqrt({i})")
    return "\n".join(lines) + "\n"


def scenario(n_statements: int, save: Callable[[Path, str], None]) -> tuple[list[float], dict]:
    engine = Engine().start()
    main: queue.Queue[Callable[[], None]] = queue.Queue()
    files = LiveFiles(
        engine, make_vt=lambda p: VT(engine, origin="file"), schedule_main=main.put, report=lambda t, e, p: None
    )
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "patch.py"
        path.write_text(patch_text(n_statements, 1.0))
        files.watch(str(path))
        for k in range(SAVES):
            version = engine.version
            t0 = time.time()  # the clock of Change.time
            save(path, patch_text(n_statements, 2.0 + k))
            deadline = time.monotonic() + 5
            while engine.version == version:
                main.get(timeout=max(0.01, deadline - time.monotonic()))()
            t1 = next(s.change.time for s in engine.history_since(version) or () if s.change is not None)
            latencies.append((t1 - t0) * 1000)
        stats = files.stats()
    files.close()
    engine.stop()
    return latencies, stats


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    print(f"Live file: save -> engine changed ({SAVES} saves each, debounce {DEBOUNCE * 1000:.0f} ms)\n")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, {threading.active_count()} threads at start\n")
    print("| file | save | p50 ms | p99 ms | max ms | mean ms | watcher p50 (first event -> applied) |")
    print("|---|---|---|---|---|---|---|")
    for n in (10, 500):
        for name, save in (("atomic rename", atomic), ("in place", in_place)):
            lat, stats = scenario(n, save)
            print(
                f"| {n} statements | {name} | {pct(lat, 0.5):.1f} | {pct(lat, 0.99):.1f} | {max(lat):.1f} "
                f"| {statistics.mean(lat):.1f} | {stats['latency_ms_p50']} |"
            )
    kernel_end_to_end()


def kernel_end_to_end(saves: int = SAVES) -> None:
    """Save -> delta received by a subscribed comm client, through a real kernel (what a user sees)."""
    from tests.conftest import start_kernel, stop_kernel
    from vtkernel.kernel.install import install

    prefix = tempfile.mkdtemp(prefix="vtbench")
    install(prefix=prefix)
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    work = Path(tempfile.mkdtemp(prefix="vtlive"))
    path = work / "patch.py"
    path.write_text(patch_text(10, 1.0))
    k = start_kernel()
    try:
        k.ok(f"vt.watch({str(path)!r})")
        c = k.client()
        lat = []
        for i in range(saves):
            rate = 2.0 + i
            version = c.version
            t0 = time.monotonic()
            atomic(path, patch_text(10, rate))
            if not c.wait_for(lambda v=version: c.version > v, 5):
                continue
            lat.append((c.times[-1] - t0) * 1000)
            time.sleep(0.1)
        c.close()
    finally:
        stop_kernel(k)
    print(
        f"\nThrough a real kernel, save -> delta at a subscribed client ({len(lat)} saves, atomic rename): "
        f"p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms, max {max(lat):.1f} ms\n"
    )


if __name__ == "__main__":
    main()
