"""Where a real scsynth places each note, while the kernel or the machine is busy (issue 11).

    python benchmarks/bench_scsynth.py

A real kernel plays a kick on every beat (240 bpm, a `pattern` module through
`vt.scsynth()`, lookahead 50 ms) to a real scsynth on JACK's dummy driver,
which records its own output (DiskOut). For each condition, this script sends
its own reference kick for each of the next beats of the grid (the same
SynthDef, panned right), so scsynth places both with the same clock:

- *offset*: kernel kick minus reference kick, in samples at 48 kHz (0 means
  the note sounded exactly on its beat);
- *late*: scsynth's own `late` lines (bundles that reached it after their
  timetag) while the condition ran;
- *started*: synths started (`/n_go`) against events the kernel sent.

Conditions: idle (the baseline); a CPU-bound Python loop in a cell; one
1 s C call that holds the kernel's GIL; every core saturated by other
processes (`os.cpu_count()` busy loops).
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np

from vtkernel.engine.timing.clock import NTP_DELTA, NTP_UNITS
from vtkernel.testing.scsynth import ScsynthServer, unavailable

BPM = 240.0
PERIOD = 60.0 / BPM
BEATS = 10  # reference kicks per condition
GIL_SECONDS: list[float] = []  # how long the C call held the GIL, measured in the cell
CONDITIONS = ("idle", "CPU-bound cell", "1 s GIL-holding C call", "every core saturated")


def timetag(wall: float) -> int:
    return round((wall + NTP_DELTA) * NTP_UNITS)


def onsets(x: Any, rate: int, threshold: float = 0.05, gap: float = 0.05) -> list[int]:
    idx = np.flatnonzero(np.abs(x) > threshold)
    if idx.size == 0:
        return []
    return [int(idx[0])] + [int(b) for a, b in itertools.pairwise(idx) if b - a > gap * rate]


class Kernel:
    def __init__(self) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="vtkernel")
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str) -> str:
        out: list[str] = []

        def hook(msg: dict[str, Any]) -> None:
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])

        reply = self.kc.execute_interactive(code, timeout=120, output_hook=hook)
        assert reply["content"]["status"] == "ok", reply["content"]
        return "".join(out)

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def main() -> int:
    why = unavailable()
    if why is not None:
        print(f"(skipped: {why})")
        return 0
    tmp = Path(tempfile.mkdtemp())
    with ScsynthServer() as server:
        k = Kernel()
        try:
            return measure(k, server, tmp)
        finally:
            k.stop()


def measure(k: Kernel, server: ScsynthServer, tmp: Path) -> int:
    wav = tmp / "bench.wav"
    k.run(
        f"vt.bpm({BPM})\n"
        "vt.module('kick', 'pattern', pattern=vt.patterns.s('kick*4').pan(0).decay(0.08))\n"
        f"vt.scsynth(port={server.port})\n"
        "vt.module('sent', 'recorder', size=100000)\n"
        "vt.connect('kick.out', 'sent.in')"
    )
    server.start_recording(wav)
    k.run("vt.play()")
    first: list[float] = []
    while len(first) < 2:
        first = [w for w, _, _ in json.loads(k.run("import json; print(json.dumps(vt.recorded('sent')))"))]
    rows = []
    ref_node = itertools.count(900_000)
    for condition in CONDITIONS:
        beat = int((time.time() + 0.6 - first[0]) / PERIOD) + 1
        grid = [first[0] + (beat + i) * PERIOD for i in range(BEATS)]
        nodes = [next(ref_node) for _ in grid]
        for node, at in zip(nodes, grid, strict=True):
            server.send_bundle(timetag(at), "/s_new", "kick", node, 0, 0, "pan", 1.0, "gain", 1.0, "decay", 0.08)
        since = time.monotonic()
        busy = run_condition(k, condition, until=grid[-1] + PERIOD)
        server.wait_for(lambda n=nodes[-1]: any(m == n for _, m in server.started), 10)
        rows.append((condition, grid, since, busy, nodes))
    priority = k.run("print(vt.stats()['clock']['priority'])").strip()
    k.run("vt.stop()")
    server.stop_recording()
    sent = len(json.loads(k.run("import json; print(json.dumps(vt.recorded('sent')))")))
    refs_sent = {n for _, _, _, _, ns in rows for n in ns}
    started = len([n for _, n in server.started if n not in refs_sent and n not in (1, 999)])

    with wave.open(str(wav)) as w:
        rate = w.getframerate()
        audio = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2) / 32768.0
    ours, refs = np.array(onsets(audio[:, 0], rate)), onsets(audio[:, 1], rate)
    print("| condition | reference kicks heard | offset, median (samples) | offset, worst (samples) | late at scsynth |")
    print("|---|---|---|---|---|")
    # Which reference kicks belong to which condition: a rough sample -> wall map
    # from the first one is plenty (the conditions lie 0.6 s and more apart).
    anchor = (refs[0], rows[0][1][0]) if refs else (0, 0.0)
    notes = {"CPU-bound cell": "", "every core saturated": f" ({os.cpu_count()} busy processes)"}
    for condition, grid, since, busy, _ in rows:
        heard = [r for r in refs if grid[0] - 0.1 <= anchor[1] + (r - anchor[0]) / rate <= grid[-1] + 0.1]
        offsets = [int(ours[np.abs(ours - r).argmin()] - r) for r in heard] if len(ours) else []
        late = len([ln for t, ln in server.log if t >= since and t <= busy and ln.startswith("late")])
        med = statistics.median(offsets) if offsets else float("nan")
        worst = max(offsets, key=abs) if offsets else float("nan")
        label = condition
        if condition.startswith("1 s") and GIL_SECONDS:
            label = f"a C call holding the GIL ({GIL_SECONDS[0]:.2f} s)"
        label += notes.get(condition, "")
        print(f"| {label} | {len(heard)}/{len(grid)} | {med:g} | {worst:g} | {late} |")
    print()
    print(
        f"{started} synths started for {sent} events sent; the scheduler process at {priority}, JACK at "
        f"{'real-time' if server.jack_realtime else 'normal'} priority; lookahead 50 ms; "
        f"{os.cpu_count()} cores. A 1-sample offset is 21 us."
    )
    return 0


def run_condition(k: Kernel, condition: str, *, until: float) -> float:
    """Run the condition until wall time `until`; return the monotonic time it ended."""
    if condition == "idle":
        while time.time() < until:
            time.sleep(0.05)
    elif condition == "CPU-bound cell":
        k.run(f"import time\nwhile time.time() < {until!r}:\n    pass")
    elif condition == "1 s GIL-holding C call":
        while time.time() < until - 2.2:
            time.sleep(0.05)
        took = k.run("import time\nt = time.perf_counter()\nx = sum(range(7 * 10**7))\nprint(time.perf_counter() - t)")
        GIL_SECONDS.append(float(took))
        while time.time() < until:
            time.sleep(0.05)
    else:
        hogs = [
            subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)
        ]
        try:
            while time.time() < until:
                time.sleep(0.05)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    return time.monotonic()


if __name__ == "__main__":
    sys.exit(main())
