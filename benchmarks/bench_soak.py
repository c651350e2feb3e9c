"""Soak: a playing patch through a real kernel with 50 changes per second, for minutes (issue 14 #17).

A vtkernel is started through jupyter_client; a cell declares a pattern
(240 bpm, 4 steps per beat: 16 bundles/s) sent to a UDP receiver in this
process, and a protocol client (a comm, as a shell would be) sends 50
`set_param` commands per second for the whole run. Every 5 s this process
samples the resident memory (RSS, from /proc via psutil) of the kernel and of
its scheduler process. It reports:

- the RSS slope of each, in MB per minute, after the first minute (a least
  squares line through the samples), and RSS at 1 minute and at the end;
- bundles expected on the grid between the first and the last received,
  received, missing, and late (arrived after their timetag);
- commands sent and acks received.

The history ring keeps 1000 versions: at 50 changes/s it is full after 20 s,
so growth from it stops inside the first minute; what grows after that is
what the slope shows. `--tracemalloc` also runs tracemalloc in the kernel
from minute 1 and prints the ten source lines whose allocations grew most.

    python benchmarks/bench_soak.py [--minutes 10] [--rate 50] [--tracemalloc] [--digest-history N]

Not a timed test: run it by hand (10 minutes by default).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import start_kernel, stop_kernel  # noqa: E402
from vtkernel.engine.timing.clock import NTP_UNITS  # noqa: E402
from vtkernel.kernel.install import install  # noqa: E402
from vtkernel.testing.osc import OscReceiver  # noqa: E402

BPM = 240.0
DIVISION = 4
PERIOD = 60.0 / BPM / DIVISION
SAMPLE_EVERY = 5.0

PATCH = """
vt.bpm({bpm})
vt.module('s', 'seq', steps=[60, 62, 64, 65], division={division})
vt.module('l', 'lfo', rate=0.5)
vt.module('o', 'osc_out', port={port}, address='/soak')
vt.connect('s.out', 'o.in')
vt.play()
"""

TRACE_TOP = """
import tracemalloc
_snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
for stat in _snap.compare_to(_soak_base, 'lineno')[:10]:
    print(stat)
"""


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, bytes) samples, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mt = sum(t for t, _ in samples) / n
    mv = sum(v for _, v in samples) / n
    num = sum((t - mt) * (v - mv) for t, v in samples)
    den = sum((t - mt) ** 2 for t, _ in samples) or 1.0
    return num / den * 60.0 / (1 << 20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=50.0, help="changes per second")
    ap.add_argument("--tracemalloc", action="store_true", help="find what grows in the kernel (slows it)")
    ap.add_argument(
        "--digest-history", type=int, default=None,
        help="set the kernel session's replay-protection digest_history_size (jupyter_client's default: 65536)",
    )
    args = ap.parse_args()

    prefix = tempfile.mkdtemp(prefix="vtsoak")
    install(prefix=prefix)
    os.environ["JUPYTER_PATH"] = os.path.join(prefix, "share", "jupyter")
    rx = OscReceiver().start()
    k = start_kernel()
    samples: dict[str, list[tuple[float, float]]] = {"kernel": [], "scheduler": []}
    sent = 0
    try:
        pids = k.ok("import os\nk = get_ipython().kernel\nassert k.runtime.wait_ready(30)\nprint(os.getpid(), k.runtime.pid)")
        kernel_pid, sched_pid = (int(x) for x in pids.split())
        procs = {"kernel": psutil.Process(kernel_pid), "scheduler": psutil.Process(sched_pid)}
        if args.digest_history is not None:
            k.ok(f"get_ipython().kernel.session.digest_history_size = {args.digest_history}")
        k.ok(PATCH.format(bpm=BPM, division=DIVISION, port=rx.port))
        c = k.client(shell="soak")
        t0 = time.monotonic()
        end = t0 + args.minutes * 60.0
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                now = time.monotonic() - t0
                for name, proc in procs.items():
                    try:
                        samples[name].append((now, float(proc.memory_info().rss)))
                    except psutil.Error:
                        pass
                line = ", ".join(f"{n} {v[-1][1] / (1 << 20):.1f} MB" for n, v in samples.items() if v)
                print(f"  {now:6.0f} s: {line}; {len(rx.received)} bundles", file=sys.stderr, flush=True)
                stop.wait(SAMPLE_EVERY)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        traced = False
        period = 1.0 / args.rate
        next_send = time.monotonic()
        i = 0
        while time.monotonic() < end:
            if args.tracemalloc and not traced and time.monotonic() - t0 > 60:
                # Through a comm-free path: a cell would block the client's commands; use the kernel's own loop.
                k.ok("import tracemalloc\ntracemalloc.start(10)\n_soak_base = tracemalloc.take_snapshot()")
                traced = True
            i += 1
            c.command({"op": "set_param", "module": "l", "param": "rate", "value": 0.5 + (i % 50) / 10})
            sent += 1
            next_send += period
            delay = next_send - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        stop.set()
        sampler.join()
        c.wait_for(lambda: len(c.of_type("ack")) + len(c.of_type("error")) >= sent, 30)
        acks = len(c.of_type("ack")) + len(c.of_type("error"))
        report(args, samples, rx, sent, acks)
        # This process's own client did not read iopub during the run: its queue is full (the
        # high-water mark drops what comes next), so drain it before asking the kernel anything.
        drained = 0
        while True:
            try:
                k.kc.get_iopub_msg(timeout=0.2)
                drained += 1
            except Exception:
                break
        t = time.monotonic()
        answered = k.execute("1", timeout=60)["status"] == "ok"
        print(
            f"\nAfter the run a cell answered in {time.monotonic() - t:.2f} s" if answered else "\nAfter the run a cell failed"
        )
        if traced:
            print("\nLargest growth in the kernel after minute 1 (tracemalloc):\n\n```\n" + k.ok(TRACE_TOP).strip() + "\n```")
        c.close()
    finally:
        rx.stop()
        try:
            stop_kernel(k)
        except Exception as exc:  # the figures are in; say so and go on
            print(f"(stopping the kernel failed: {exc})", file=sys.stderr)
    return 0


def report(args: argparse.Namespace, samples: dict[str, list[tuple[float, float]]], rx: OscReceiver, sent: int, acks: int) -> None:

    got = [r for r in list(rx.received) if r.timetag is not None]
    tag0 = got[0].timetag
    assert tag0 is not None
    unit = PERIOD * NTP_UNITS
    ks = {round((r.timetag - tag0) / unit) for r in got if r.timetag is not None}
    expected = max(ks) + 1
    late = sum(1 for r in got if (r.ahead or 0) <= 0)

    print(f"\n### Soak: {args.minutes:g} min playing ({1 / PERIOD:.0f} bundles/s) with {args.rate:g} changes/s\n")
    print("| process | RSS at 1 min (MB) | RSS at end (MB) | slope after the first minute (MB/min) |")
    print("|---|---|---|---|")
    for name, values in samples.items():
        after = [(t, v) for t, v in values if t >= 60.0] or values
        at1 = after[0][1] / (1 << 20)
        last = values[-1][1] / (1 << 20)
        print(f"| {name} | {at1:.1f} | {last:.1f} | {slope_mb_per_min(after):+.3f} |")
    print(
        f"\nBundles at the receiver: {expected} expected on the grid, {len(got)} received, "
        f"{expected - len(ks)} missing, {late} late ({late / max(1, len(got)):.3%}).  "
        f"Commands: {sent} sent, {acks} acks or errors received."
    )
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
