"""Phase error between two Link-synced vtkernels, from their OSC timetags at one receiver (issue 10).

Runs `tests/link/_scenario.py` inside a private network namespace
(`unshare -n`: Link's multicast never leaves it): two kernels play the same
pattern to one UDP receiver, and for every onset of kernel B the distance to
the nearest onset of kernel A is the phase error. Once idle, once with a
CPU-bound cell in kernel B. Goal: p99 under 1 ms.

    python benchmarks/bench_link.py               # 60 s each
    python benchmarks/bench_link.py --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(seconds: float, busy: bool) -> dict:
    cmd = ["unshare", "-n", sys.executable, str(ROOT / "tests" / "link" / "_scenario.py"),
           "--seconds", str(seconds), "--pattern", "x*16"]
    if busy:
        cmd.append("--busy")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 240,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    print("| condition | onsets compared | phase error p50 | p99 | max | goal p99 < 1 ms |")
    print("|---|---:|---:|---:|---:|---|")
    for label, busy in (("idle", False), ("CPU-bound cell in one kernel", True)):
        r = run(args.seconds, busy)
        e = r["phase_error_ms"]
        ok = "met" if e["p99"] is not None and e["p99"] < 1.0 else "missed"
        print(f"| {label} | {r['onsets'][1]} | {e['p50']:.4f} ms | {e['p99']:.4f} ms | {e['max']:.4f} ms | {ok} |")
    print()
    print(f"Two kernels in one `unshare -n` namespace, 120 bpm, `x*16` (4 onsets a beat), {args.seconds:g} s each; "
          "kernel B joined the session late, while playing. The baseline is the goal itself: Link's own "
          "promise between peers on one host is well under a millisecond.")


if __name__ == "__main__":
    main()
