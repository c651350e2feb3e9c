"""Benchmarks of the spine (issue 2), each beside a baseline measured in the same run.

    python benchmarks/bench_spine.py            # prints a markdown table
    python benchmarks/bench_spine.py connections   # only some parts (queue publish connections kernels acks fanout)

Medians and ratios only: these machines are noisy.
"""

from __future__ import annotations

import copy
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtkernel.engine import Engine
from vtkernel.engine.apply import EditState, apply
from vtkernel.engine.document import Document
from vtkernel.engine.schema import default_registry
from vtkernel.protocol import AddModule, Batch, SetParam

Row = tuple[str, str, str, str]
REG = default_registry()


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def fmt_us(x: float) -> str:
    return f"{x * 1e6:.2f} µs" if x < 1e-3 else f"{x * 1e3:.2f} ms"


# --------------------------------------------------------------------------- engine


def bench_queue(n: int = 100_000, rounds: int = 5) -> list[Row]:
    """Per-command cost: enqueue -> applied by the engine thread, vs deque and queue.Queue hand-offs."""
    cmds = [SetParam(module="m", param="rate", value=1.0 + (i % 100) / 10) for i in range(n)]

    def engine_round() -> float:
        e = Engine().start()
        e.call(AddModule(name="m", type="lfo"))
        t = time.perf_counter()
        submit = e.submit
        for c in cmds:
            submit(c)
        e.wait_applied()
        dt = time.perf_counter() - t
        e.stop()
        return dt / n

    def deque_round() -> float:
        d: deque[Any] = deque()
        t = time.perf_counter()
        for c in cmds:
            d.append(c)
        pop = d.popleft
        for _ in range(n):
            pop()
        return (time.perf_counter() - t) / n

    def qq_round() -> float:
        q: queue.Queue[Any] = queue.Queue()
        done = threading.Event()

        def consume() -> None:
            for _ in range(n):
                q.get()
            done.set()

        t = time.perf_counter()
        threading.Thread(target=consume, daemon=True).start()
        for c in cmds:
            q.put(c)
        done.wait()
        return (time.perf_counter() - t) / n

    eng = med([engine_round() for _ in range(rounds)])
    dq = med([deque_round() for _ in range(rounds)])
    qq = med([qq_round() for _ in range(rounds)])
    return [
        ("enqueue -> applied, per command (set_param)", fmt_us(eng), f"bare deque push+pop {fmt_us(dq)}", f"{eng / dq:.1f}× (goal ≤ 20×)"),
        ("", "", f"queue.Queue hand-off to a thread {fmt_us(qq)}", f"{eng / qq:.2f}×"),
    ]


def bench_publish(rounds: int = 2000) -> list[Row]:
    """Cost of one new version (set_param) at 10 vs 10,000 modules, vs a deep copy of the document."""

    def doc_with(n: int) -> EditState:
        state = EditState(Document())
        state, _ = apply(state, Batch(commands=[AddModule(name=f"m{i}", type="lfo") for i in range(n)]), REG)
        return state

    def publish_cost(state: EditState) -> float:
        times = []
        for i in range(rounds):
            cmd = SetParam(module="m5", param="rate", value=1.0 + (i % 50))
            t = time.perf_counter()
            apply(state, cmd, REG)
            times.append(time.perf_counter() - t)
        return med(times)

    small, big = doc_with(10), doc_with(10_000)
    c10, c10k = publish_cost(small), publish_cost(big)
    as_dict = big.doc.to_json()
    t = time.perf_counter()
    for _ in range(5):
        copy.deepcopy(as_dict)
    deep = (time.perf_counter() - t) / 5
    return [
        ("publish one change, 10 modules", fmt_us(c10), "", ""),
        ("publish one change, 10,000 modules", fmt_us(c10k), f"deep copy of the 10k document {fmt_us(deep)}", f"10k/10 = {c10k / c10:.2f} (goal ≤ 1.5); {deep / c10k:,.0f}× cheaper than a deep copy"),
    ]


def bench_connections(rounds: int = 400) -> list[Row]:
    """One connect/disconnect/remove among 2,000 connections vs among 20: delta bytes and engine cost."""
    import json

    from vtkernel.engine.delta import render_ops
    from vtkernel.protocol import Connect, RemoveModule

    def chain(n: int) -> EditState:  # n lfos, each modulating the next: n-1 connections
        state = EditState(Document())
        cmds: list[Any] = [AddModule(name=f"m{i}", type="lfo") for i in range(n)]
        cmds += [Connect(src=f"m{i}.out", dst=f"m{i + 1}.rate") for i in range(n - 1)]
        state, _ = apply(state, Batch(commands=cmds), REG)
        return state

    def cost(state: EditState, cmd: Any) -> tuple[float, int]:
        times = []
        size = 0
        for _ in range(rounds):
            t = time.perf_counter()
            after, paths = apply(state, cmd, REG)
            ops = render_ops(state.doc, after.doc, paths)
            times.append(time.perf_counter() - t)
            size = len(json.dumps(ops, separators=(",", ":")))
        return med(times), size

    small, big = chain(21), chain(2001)
    connect = Connect(src="m5.out", dst="m9.depth")
    (t_small, _), (t_big, bytes_big) = cost(small, connect), cost(big, connect)
    whole = len(json.dumps([{"op": "replace", "path": "/connections", "value": big.doc.to_json()["connections"]}], separators=(",", ":")))
    rm = RemoveModule(name="m10")
    (r_small, _), (r_big, rm_bytes) = cost(small, rm), cost(big, rm)
    return [
        ("delta for one connect among 2,000 connections", f"{bytes_big} B", f"the whole list (before issue 12) {whole / 1024:.1f} KiB", f"{whole / bytes_big:,.0f}× smaller"),
        ("connect: apply + render the delta, 2,000 connections", fmt_us(t_big), f"20 connections {fmt_us(t_small)}", f"{t_big / t_small:.2f}× (O(change): ≈ 1)"),
        ("remove a module with 2 connections, 2,000 connections", f"{fmt_us(r_big)}, {rm_bytes} B", f"20 connections {fmt_us(r_small)}", f"{r_big / r_small:.2f}×"),
    ]


# --------------------------------------------------------------------------- kernels


def _install_spec() -> str:
    prefix = tempfile.mkdtemp(prefix="vtbench")
    from vtkernel.kernel.install import install

    install(prefix=prefix)
    path = os.path.join(prefix, "share", "jupyter")
    os.environ["JUPYTER_PATH"] = path
    return path


def _start(name: str) -> tuple[Any, Any, float]:
    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name=name)
    t = time.perf_counter()
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc, time.perf_counter() - t


def _stop(km: Any, kc: Any) -> None:
    kc.stop_channels()
    km.shutdown_kernel(now=True)


def bench_kernels(starts: int = 7, executes: int = 100) -> list[Row]:
    """Start-up to ready and to the first cell's reply, alternating stock ipykernel and vtkernel (issue 12 #20)."""
    _install_spec()
    rows: list[Row] = []
    ready: dict[str, list[float]] = {"python3": [], "vtkernel": []}
    first: dict[str, list[float]] = {"python3": [], "vtkernel": []}
    for _ in range(starts):  # alternating, so load on the machine hits both alike
        for name in ("python3", "vtkernel"):
            km, kc, dt = _start(name)
            ready[name].append(dt)
            t = time.perf_counter()
            kc.execute_interactive("x = 1", timeout=60)
            first[name].append(dt + time.perf_counter() - t)
            _stop(km, kc)
    lat: dict[str, float] = {}
    for name in ("python3", "vtkernel"):
        km, kc, _ = _start(name)
        times = []
        for _ in range(executes):
            t = time.perf_counter()
            kc.execute_interactive("x = 1", timeout=30)
            times.append(time.perf_counter() - t)
        _stop(km, kc)
        lat[name] = med(times)
    s0, s1 = med(ready["python3"]), med(ready["vtkernel"])
    f0, f1 = med(first["python3"]), med(first["vtkernel"])
    rows.append(("kernel startup to ready", f"{s1:.2f} s", f"stock ipykernel {s0:.2f} s", f"{s1 / s0:.2f}× (goal ≤ 1.2×)"))
    rows.append(
        (
            "kernel startup to the first cell's reply (the engine starts behind the first kernel_info reply)",
            f"{f1:.2f} s",
            f"stock ipykernel {f0:.2f} s",
            f"{f1 / f0:.2f}×",
        )
    )
    e0, e1 = lat["python3"], lat["vtkernel"]
    rows.append(("execute round-trip (`x = 1`)", fmt_us(e1), f"stock ipykernel {fmt_us(e0)}", f"{e1 / e0:.2f}× (goal ≤ 1.15×)"))
    return rows


def bench_acks(n: int = 60) -> list[Row]:
    """Comm ack latency idle, while a cell sleeps and while a cell burns CPU."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.conftest import Kernel, VTClient

    rows: list[Row] = []
    throughput: dict[float, float] = {}
    for switch in (0.005, 0.001):
        km, kc, _ = _start("vtkernel")
        k = Kernel(km, kc)
        k.ok(f"import sys; sys.setswitchinterval({switch})")
        runs = [float(k.ok("import time\nt = time.perf_counter()\nfor _ in range(20000): sum(range(500))\nprint(time.perf_counter() - t)")) for _ in range(5)]
        throughput[switch] = med(runs)
        k.ok("vt.module('l', 'lfo')")
        c = VTClient(km)

        def measure(c: VTClient = c) -> list[float]:
            out = []
            for i in range(n):
                t = time.perf_counter()
                c.call({"op": "set_param", "module": "l", "param": "rate", "value": 1 + i % 9 + 0.5})
                out.append(time.perf_counter() - t)
                time.sleep(0.02)  # one command at a time, as a person types or drags
            return out

        idle = measure()
        kc.execute("import time; time.sleep(30)")
        time.sleep(0.3)
        blocking = measure()
        km.interrupt_kernel()
        kc.get_shell_msg(timeout=30)  # the interrupted cell's reply
        kc.execute("import time\nt = time.time()\nwhile time.time() - t < 30:\n    sum(range(200))")
        time.sleep(0.3)
        cpu = measure()
        km.interrupt_kernel()
        kc.get_shell_msg(timeout=30)
        c.close()
        _stop(km, kc)
        label = "switch interval 5 ms (Python's default)" if switch == 0.005 else "switch interval 1 ms (vtkernel's default)"
        for what, xs in (("idle", idle), ("during time.sleep cell", blocking), ("during CPU-bound cell", cpu)):
            rows.append((f"comm ack, {what}, {label}", f"p50 {fmt_us(med(xs))}, p99 {fmt_us(pct(xs, 0.99))}", "idle p50 " + fmt_us(med(idle)), f"{med(xs) / med(idle):.1f}× idle"))
    rows.append(("CPU-bound cell time, switch interval 1 ms", f"{throughput[0.001]:.3f} s", f"5 ms: {throughput[0.005]:.3f} s", f"{throughput[0.001] / throughput[0.005]:.2f}×"))
    return rows


def bench_fanout(changes: int = 40) -> list[Row]:
    """Latency from a cell's change to a delta at 1 and at 10 subscribed clients."""
    from tests.conftest import Kernel, VTClient

    rows: list[Row] = []
    base = None
    for n_clients in (1, 10):
        km, kc, _ = _start("vtkernel")
        k = Kernel(km, kc)
        k.ok("vt.module('l', 'lfo')")
        clients = [VTClient(km) for _ in range(n_clients)]
        lat = []
        for i in range(changes):
            version = clients[0].version
            t = time.monotonic()
            k.ok(f"vt.set('l.rate', {2 + i})")
            for c in clients:
                c.wait_version(version + 1, 10)
            arrival = max(c.times[-1] for c in clients)
            lat.append(arrival - t)
            time.sleep(0.02)  # past the 60/s pacing so each change is measured alone
        for c in clients:
            c.close()
        _stop(km, kc)
        m = med(lat)
        base = base or m
        rows.append((f"cell change -> delta at all of {n_clients} client(s)", f"p50 {fmt_us(m)}, p99 {fmt_us(pct(lat, 0.99))}", "1 client p50 " + fmt_us(base), f"{m / base:.2f}×"))
    return rows


def main() -> None:
    rows: list[Row] = []
    parts = (bench_queue, bench_publish, bench_connections, bench_kernels, bench_acks, bench_fanout)
    chosen = set(sys.argv[1:])
    for part in parts:
        if chosen and part.__name__.removeprefix("bench_") not in chosen:
            continue
        rows.extend(part())
        print(f"... {part.__name__} done", file=sys.stderr)
    print("| measure | vtkernel | baseline (same run) | ratio |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
