"""What does querying a pattern cost, against Strudel 1.1's own `queryArc` on the same machine?

    python benchmarks/bench_patterns.py [--cycles 64] [--repeats 9]

Each pattern is built once (mini-notation text, as a user types it), then queried one cycle at
a time for `--cycles` cycles (what the scheduler does); that pass is repeated `--repeats` times
and the median time per cycle is reported. The same texts are queried the same way by Strudel
under node (tests/strudel/reference.mjs), passes interleaved with ours so both sides see the
same machine load, so the ratio is what counts:

- the issue's case: 16 voices stacked, each three levels of nesting deep, with `< >`, `*`, `?`,
  Euclid and `|` inside;
- a drum loop and a random hi-hat, the everyday cases.

Both sides must give the same number of haps (checked) so they do the same work. Prints a
markdown table. Needs node and `npm ci --prefix tests/strudel`; without them it prints only
vtkernel's figures.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.patterns.strudel import Strudel, start
from vtkernel.engine.patterns.mini import mini

VOICE_PARTS = [
    "bd*2 [~ sd] [hh [hh <oh cp>]]",
    "[c3 <eb3 g3>] [~ [bb3 c4]] <f3 [g3 ab3]>",
    "hh*4? [~ [cp cp?]] <[rim rim] rim>",
    "[0 [2 <4 5>]] [7 [~ 9]] <11 [12 14]>",
    "sd(3,8) [~ <lt mt> [ht ~]]",
    "[a|b|c] [[d e] f] <g [a b]>",
    "<[c e] [d f]> [g [a ~]] b@2",
    "{bd sd, hh hh hh} [~ [cp ~]]",
]


def nested16() -> str:
    """16 voices, each three levels deep: `[ [ [ ... ] ] ]` inside a stack."""
    voices = [f"[{VOICE_PARTS[i % len(VOICE_PARTS)]}]" + ("*2" if i % 3 == 0 else "") for i in range(16)]
    return ", ".join(voices)


CASES = [
    ("16 voices, 3 levels nested", nested16()),
    ("drum loop `bd*2 [~ sd] <cp hh*2> hh*8`", "bd*2 [~ sd] <cp hh*2> hh*8"),
    ("random hi-hat `hh*16?`", "hh*16?"),
]


def python_pass(pat: object, cycles: int) -> tuple[float, int]:
    """Seconds per cycle of one pass over `cycles` cycles, and the haps seen."""
    query = pat.query  # type: ignore[attr-defined]
    haps = 0
    t0 = time.perf_counter()
    for c in range(cycles):
        haps += len(query(c, c + 1))
    return (time.perf_counter() - t0) / cycles, haps


def bench_case(text: str, cycles: int, repeats: int, ref: Strudel | None) -> tuple[float, float | None, int]:
    """Medians (vtkernel, Strudel) of `repeats` passes, interleaved so both see the same machine load."""
    pat = mini(text)
    python_pass(pat, cycles)  # warm-up, as node's JIT gets one below
    if ref is not None:
        ref.bench(text, cycles=cycles, repeats=1)
    py_times, js_times = [], []
    py_haps = 0
    for _ in range(repeats):
        t, py_haps = python_pass(pat, cycles)
        py_times.append(t)
        if ref is not None:
            r = ref.bench(text, cycles=cycles, repeats=1)
            js_times.append(r["seconds_per_cycle"][0])
            if r["haps"] != py_haps:
                raise SystemExit(f"{text!r}: vtkernel gives {py_haps} haps, Strudel {r['haps']}")
    js = statistics.median(js_times) if js_times else None
    return statistics.median(py_times), js, py_haps


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=9)
    args = ap.parse_args()
    try:
        ref = start()
    except RuntimeError as err:
        ref = None
        print(f"(Strudel not measured: {err})\n")
    rows = []
    for name, text in CASES:
        py, js, haps = bench_case(text, args.cycles, args.repeats, ref)
        rows.append((name, haps / args.cycles, py, js))
    if ref is not None:
        ref.close()
    print(
        f"Median query cost per cycle over {args.cycles} cycles x {args.repeats} repeats; "
        f"Python {platform.python_version()}, node (Strudel 1.1.0) in the same run.\n"
    )
    print("| pattern | haps per cycle | vtkernel (µs/cycle) | Strudel queryArc (µs/cycle) | ratio |")
    print("|---|---|---|---|---|")
    for name, haps, py, js in rows:
        js_s = "–" if js is None else f"{js * 1e6:.0f}"
        ratio = "–" if js is None else f"{py / js:.2f}x"
        print(f"| {name} | {haps:.1f} | {py * 1e6:.0f} | {js_s} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
