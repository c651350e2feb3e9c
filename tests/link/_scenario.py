"""Run inside a private network namespace (`unshare -n`): two vtkernels and a plain Link peer.

Started by tests/link/test_link_sync.py, never directly on a machine's real
network: Ableton Link multicasts on every interface. Prints one JSON object
with what it measured; the test asserts on it.

    unshare -n python tests/link/_scenario.py [--seconds N] [--busy]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from jupyter_client.manager import KernelManager
from pythonosc.osc_bundle import OscBundle
from pythonosc.osc_packet import OscPacket

REPO = Path(__file__).resolve().parents[2]


def isolate() -> None:
    """Loopback only, multicast routed to it: Link's discovery never leaves this namespace."""
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lo", "multicast", "on"],
                ["ip", "route", "add", "224.0.0.0/4", "dev", "lo"]):
        subprocess.run(cmd, check=True)
    routes = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert [line.split(":")[1].strip() for line in routes.splitlines()] == ["lo"], routes


class Receiver:
    """UDP loopback; parses each OSC bundle and keeps (address, timetag seconds, wall receive time)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.got: list[tuple[str, float, float]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while True:
            data, _ = self.sock.recvfrom(65536)
            now = time.time()
            if not OscBundle.dgram_is_bundle(data):
                continue
            bundle = OscBundle(data)
            for msg in OscPacket(data).messages:
                with self.cond:
                    self.got.append((msg.message.address, bundle.timestamp, now))
                    self.cond.notify_all()

    def wait(self, pred, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: pred(self.got), timeout)


class Kernel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.km = KernelManager(kernel_name="vtkernel")
        self.km.start_kernel(env={**os.environ, "PYTHONPATH": str(REPO)})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 60) -> str:
        out: list[str] = []
        err: list[str] = []

        def hook(msg):
            if msg["msg_type"] == "stream":
                (out if msg["content"]["name"] == "stdout" else err).append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                err.append("\n".join(msg["content"]["traceback"]))

        reply = self.kc.execute_interactive(code, timeout=timeout, output_hook=hook)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"{self.name}: {code!r} failed: {''.join(err)}")
        return "".join(out)

    def stop(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


PATTERN = "x*4"


def patch(port: int, address: str) -> str:
    return (
        f"vt.module('p', 'pattern', pattern={PATTERN!r})\n"
        f"vt.module('o', 'osc_out', port={port}, address={address!r})\n"
        "vt.connect('p.out', 'o.in')\n"
    )


def onsets(got: list[tuple[str, float, float]], address: str) -> list[float]:
    return sorted(t for a, t, _ in got if a == address)


def nearest_errors(a: list[float], b: list[float]) -> list[float]:
    """For each onset of `b`, the distance to the nearest onset of `a` (seconds)."""
    out = []
    for t in b:
        out.append(min(abs(t - x) for x in a))
    return out


def telemetry(k: Kernel) -> dict:
    return json.loads(k.run("import json; print(json.dumps(get_ipython().kernel.runtime.telemetry().get('link')))"))


def wait_kernel(k: Kernel, code: str, timeout: float) -> bool:
    """Poll a kernel expression until it is true (the kernel is the only witness of its own state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if k.run(f"print(bool({code}))").strip() == "True":
            return True
        time.sleep(0.05)
    return False


def third_party_tempo(bpm: float, hold: float) -> subprocess.Popen:
    """A plain aalink peer (not vtkernel) that joins and sets the session's tempo."""
    code = (
        "import asyncio, sys\n"
        "from aalink import Link\n"
        "async def main():\n"
        "    link = Link(100)\n"
        "    link.enabled = True\n"
        "    for _ in range(200):\n"
        "        if link.num_peers >= 2: break\n"
        "        await asyncio.sleep(0.02)\n"
        f"    link.tempo = {bpm}\n"
        "    print('peers', link.num_peers, flush=True)\n"
        f"    await asyncio.sleep({hold})\n"
        "asyncio.run(main())\n"
    )
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--busy", action="store_true", help="a CPU-bound cell in kernel B while measuring")
    ap.add_argument("--pattern", default="x*4", help="what both kernels play (denser: more samples)")
    args = ap.parse_args()
    global PATTERN
    PATTERN = args.pattern
    isolate()
    rx = Receiver()
    result: dict = {}
    a, b = Kernel("A"), Kernel("B")
    try:
        a.run(patch(rx.port, "/a") + "vt.link(True)\nvt.bpm(120)\nvt.play()\n")
        assert rx.wait(lambda g: len(onsets(g, "/a")) >= 8, 20), "kernel A sent nothing"
        # B joins late, playing already: its phase must line up at its next bar.
        b.run(patch(rx.port, "/b") + "vt.bpm(90)\nvt.play()\n")
        assert rx.wait(lambda g: len(onsets(g, "/b")) >= 4, 20), "kernel B sent nothing"
        b.run("vt.link(True)")
        result["b_adopted_tempo"] = wait_kernel(b, "abs(vt.snapshot()['clock']['bpm'] - 120.0) < 0.001", 10)
        busy = None
        if args.busy:
            loop = f"import time\nt = time.monotonic()\nwhile time.monotonic() - t < {args.seconds + 4}:\n    pass\n"
            busy = threading.Thread(target=b.run, args=(loop, args.seconds + 60), daemon=True)
        # let B line up (next bar) and settle, then measure.
        t_join = time.time()
        assert rx.wait(lambda g: any(addr == "/b" and t > t_join + 4.0 for addr, t, _ in g), 20)
        if busy is not None:
            busy.start()
        start = time.time() + 0.5
        rx.wait(lambda g: any(addr == "/b" and t > start + args.seconds for addr, t, _ in g), args.seconds + 20)
        A = [t for t in onsets(rx.got, "/a") if start <= t <= start + args.seconds]
        B = [t for t in onsets(rx.got, "/b") if start <= t <= start + args.seconds]
        errs = nearest_errors(A, B)
        result["onsets"] = [len(A), len(B)]
        result["phase_error_ms"] = {
            "p50": statistics.median(errs) * 1000 if errs else None,
            "p99": sorted(errs)[int(0.99 * (len(errs) - 1))] * 1000 if errs else None,
            "max": max(errs) * 1000 if errs else None,
        }
        if busy is not None:
            busy.join()
        result["telemetry"] = {"a": telemetry(a), "b": telemetry(b)}
        # A tempo change on A reaches B through the session.
        a.run("vt.bpm(133)")
        result["tempo_reached_b"] = wait_kernel(b, "vt.snapshot()['clock']['bpm'] == 133.0", 10)
        result["a_kept_its_typed_tempo"] = a.run("print(vt.snapshot()['clock']['bpm'])").strip()
        # A third-party peer sets the tempo: both follow.
        peer = third_party_tempo(97.0, 3.0)
        result["third_party_a"] = wait_kernel(a, "vt.snapshot()['clock']['bpm'] == 97.0", 15)
        result["third_party_b"] = wait_kernel(b, "vt.snapshot()['clock']['bpm'] == 97.0", 15)
        result["third_party_saw"] = peer.stdout.readline().strip() if peer.stdout else ""
        peer.wait(10)
        # Stopped, still in the session: the peer count keeps coming (a panel shows who is there).
        a.run("vt.stop()")
        later = third_party_tempo(97.0, 4.0)
        peers = "(get_ipython().kernel.runtime.telemetry().get('link') or {}).get('peers')"
        result["peers_while_stopped"] = wait_kernel(a, f"{peers} == 2", 15)
        later.wait(15)
        # Start/stop sync (`link sync`): A is stopped and B plays; once both share play/stop,
        # the session plays and A follows; B's stop stops A.
        a.run("vt.link(True, sync=True)")
        b.run("vt.link(True, sync=True)")
        result["sync_started_a"] = wait_kernel(a, "vt.snapshot()['clock']['playing']", 15)
        b.run("vt.stop()")
        result["sync_stopped_a"] = wait_kernel(a, "not vt.snapshot()['clock']['playing']", 15)
        a.run("vt.link(True)")  # `link on`: tempo and phase only, play/stop its own again
        result["sync_off_a"] = a.run("print(vt.snapshot()['clock'].get('link_sync', False))").strip()
    finally:
        a.stop()
        b.stop()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
