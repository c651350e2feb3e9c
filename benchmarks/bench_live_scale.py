"""Watched files at scale: run and edit cost for 1k, 10k and 100k statements (issue 14 #15).

A file of N top-level statements (half `vt.module(...)` declarations, half
assignments) runs once, then takes two-line edits (one param changed, one
module added). Each edit is timed from the new text to the engine having
applied it (`LiveFile.run`, which flushes: read-your-writes), three times,
median. The debounce and the watcher's notice are constant per save and
measured by `bench_live.py`; this benchmark is about what grows with N.

Baseline, same run: `ast.parse` of the same text, the floor for any tool
that reads the whole file (the edit also parses the file once). "edit /
parse" near 1 means the edit costs what the parse costs plus what changed;
"first run per statement" staying flat across N means the first run is
linear in the file.

    python benchmarks/bench_live_scale.py            # 1k, 10k, 100k
    python benchmarks/bench_live_scale.py 1000 10000
"""

from __future__ import annotations

import ast
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtkernel.api import VT
from vtkernel.engine import Engine
from vtkernel.live.runner import LiveFile

EDITS = 3


def source(n: int) -> list[str]:
    lines = ["base = 1"]
    for i in range(1, n):
        lines.append(f'vt.module("m{i}", "lfo", rate={1 + i % 50}.0)' if i % 2 else f"y{i} = base + {i}")
    return lines


def measure(n: int) -> dict[str, float]:
    engine = Engine().start()
    try:
        lines = source(n)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "big.py")
            text = "\n".join(lines) + "\n"
            Path(path).write_text(text)
            live = LiveFile(path, VT(engine, origin="file"))
            t0 = time.perf_counter()
            first = live.run(text)
            first_s = time.perf_counter() - t0
            assert first.ok, first.error
            parse = []
            for _ in range(EDITS):
                t0 = time.perf_counter()
                ast.parse(text)
                parse.append(time.perf_counter() - t0)
            edits = []
            for k in range(EDITS):
                target = 1 + 2 * ((n // 3 + k) // 2)  # a vt.module line in the middle
                lines[target] = f'vt.module("m{target}", "lfo", rate={7 + k}.5)'
                lines.append(f'vt.module("extra{k}", "lfo")')
                text = "\n".join(lines) + "\n"
                t0 = time.perf_counter()
                result = live.run(text)
                edits.append(time.perf_counter() - t0)
                assert result.ok and len(result.ran) == 2, (result.ran[:5], result.error)
            live.close()
    finally:
        engine.stop()
    return {
        "first": first_s,
        "edit": statistics.median(edits),
        "parse": statistics.median(parse),
    }


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [1000, 10_000, 100_000]
    print("| statements | first run | first run per statement | two-line edit, applied | `ast.parse` (baseline) | edit / parse |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        m = measure(n)
        print(
            f"| {n:,} | {m['first']:.2f} s | {m['first'] / n * 1e6:.0f} µs | {m['edit'] * 1000:.0f} ms "
            f"| {m['parse'] * 1000:.0f} ms | {m['edit'] / m['parse']:.2f} |"
        )
    print()
    print(f"Medians of {EDITS} edits. Before this change (same machine, 100k statements) a run took 47 s and a two-line edit 232 s.")


if __name__ == "__main__":
    main(sys.argv[1:])
