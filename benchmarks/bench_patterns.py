"""What does querying a pattern cost, against Strudel 1.1's own `queryArc` on the same machine?

    python benchmarks/bench_patterns.py [--cycles 64] [--repeats 7]

Each pattern is built once (mini-notation text, as a user types it), then queried one cycle at
a time for `--cycles` cycles (what the scheduler does); that loop is repeated `--repeats` times
and the median time per cycle is reported. The same texts are queried the same way by Strudel
under node (tests/strudel/reference.mjs), in the same run, so the ratio is what counts:

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

from tests.patterns.strudel import start
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


def bench_python(text: str, cycles: int, repeats: int) -> tuple[float, int]:
    pat = mini(text)
    haps = 0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for c in range(cycles):
            haps += len(pat.query(c, c + 1))
        times.append((time.perf_counter() - t0) / cycles)
    return statistics.median(times), haps // repeats


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    try:
        ref = start()
    except RuntimeError as err:
        ref = None
        print(f"(Strudel not measured: {err})\n")
    rows = []
    for name, text in CASES:
        py, py_haps = bench_python(text, args.cycles, args.repeats)
        js = js_haps = None
        if ref is not None:
            # warm up node's JIT as Python's caches were warmed: one untimed pass
            ref.bench(text, cycles=args.cycles, repeats=1)
            r = ref.bench(text, cycles=args.cycles, repeats=args.repeats)
            js = statistics.median(r["seconds_per_cycle"])
            js_haps = r["haps"] // args.repeats
            if js_haps != py_haps:
                raise SystemExit(f"{name}: vtkernel gives {py_haps} haps, Strudel {js_haps}")
        rows.append((name, py_haps / args.cycles, py, js))
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
