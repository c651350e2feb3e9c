"""Every command gets its ack under load, and all of iopub stays within the budget (SPEC §5, issue 14 #6).

Five clients, each on its own jupyter_client connection as separate
frontends are, send 2,000 commands each while a cell writes to the engine in
a loop. Every client reads all of iopub (status messages included), so the
budget is measured on what a frontend actually receives, not on what the hub
counts.

The flood runs once per module; the tests assert on what it recorded.
"""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Kernel, VTClient, own_client, start_kernel, stop_kernel

CLIENTS = 5
COMMANDS = 2000
SPEC_IOPUB_LIMIT = 500  # messages per second, all of iopub (SPEC §5)


@dataclass
class Flood:
    clients: list[VTClient]
    ids: list[list[int]]
    final: dict[str, Any]
    started: float
    ended: float  # every ack in (time.time(), like the kernel's header dates)
    hub_stats: dict[str, Any]


def wait_busy(kernel: Kernel, msg_id: str, timeout: float = 30) -> None:
    """Wait for the kernel's `busy` status for the request `msg_id` (the cell has started)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kernel.kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "busy" and msg["parent_header"].get("msg_id") == msg_id:
            return
    raise AssertionError("the cell never started")


def max_per_second(times: list[float]) -> int:
    """The most messages in any one-second window."""
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - 1.0:
            j += 1
        best = max(best, i - j + 1)
    return best


@pytest.fixture(scope="module")
def flood(jupyter_path: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flood]:
    kernel = start_kernel()
    stop_flag = Path(tmp_path_factory.mktemp("flood")) / "stop"
    clients: list[VTClient] = []
    try:
        kernel.ok("vt.module('w', 'lfo')\n" + "".join(f"vt.module('c{i}', 'lfo')\n" for i in range(CLIENTS)))
        clients = [kernel.client(shell=f"client{i}") for i in range(CLIENTS)]
        writer = kernel.kc.execute(
            "import os\ni = 0\n"
            f"while not os.path.exists({str(stop_flag)!r}):\n"
            "    vt.set('w.rate', 1 + (i % 500) / 10)\n    i += 1\n"
        )
        wait_busy(kernel, writer)
        started = time.time()  # iopub times are the kernel's send times (header dates)
        ids: list[list[int]] = [[] for _ in clients]
        for n in range(COMMANDS):  # interleaved, as independent frontends would be
            for i, c in enumerate(clients):
                ids[i].append(c.command({"op": "set_param", "module": f"c{i}", "param": "rate", "value": 1 + n % 100}))
        for i, c in enumerate(clients):
            want = set(ids[i])
            c.wait_for(lambda c=c, want=want: want <= {m["id"] for m in c.messages if m["type"] in ("ack", "error")}, 180)
        ended = time.time()
        stop_flag.write_text("stop")
        reply = kernel.kc.get_shell_msg(timeout=60)  # the writer's execute_reply
        assert reply["parent_header"]["msg_id"] == writer and reply["content"]["status"] == "ok", reply["content"]
        # The cell client did not read iopub during the flood; a fresh connection has no backlog.
        kernel.kc.stop_channels()
        kernel = Kernel(kernel.km, own_client(kernel.connection_file))
        final = json.loads(kernel.ok("%vt state"))
        for c in clients:
            c.wait_for(lambda c=c: c.version == final["version"], 30)
        hub_stats = json.loads(kernel.ok("import json; print(json.dumps(get_ipython().kernel.hub.stats))"))
        yield Flood(clients, ids, final, started, ended, hub_stats)
    finally:
        stop_flag.write_text("stop")
        for c in clients:
            c.close()
        stop_kernel(kernel)


def test_every_command_of_five_separate_connections_is_acked_under_load(flood: Flood) -> None:
    for c, ids in zip(flood.clients, flood.ids, strict=True):
        replies = {m["id"]: m for m in c.messages if m["type"] in ("ack", "error")}
        missing = [i for i in ids if i not in replies]
        assert not missing, f"{c.kc.session.session}: {len(missing)} of {len(ids)} commands never answered (first {missing[:5]})"
        assert all(replies[i]["type"] == "ack" for i in ids)
        # Each client converged on the exact final document.
        assert c.mirror == {k: v for k, v in flood.final.items() if k != "version"}
    assert flood.hub_stats["acks"] >= CLIENTS * COMMANDS


def test_all_of_iopub_stays_under_the_spec_budget_with_several_clients(flood: Flood) -> None:
    """What each connection received: every iopub message, status messages included."""
    for c in flood.clients:
        during = [(t, k) for t, k in c.iopub if flood.started <= t <= flood.ended]
        kinds = {k for _, k in during}
        assert "comm_msg" in kinds
        peak = max_per_second([t for t, _ in during])
        assert peak <= SPEC_IOPUB_LIMIT, f"{peak} iopub messages in one second (kinds: {sorted(kinds)})"
        statuses = sum(1 for _, k in during if k == "status")
        assert statuses == 0, f"{statuses} status messages during the flood: hub comm traffic must not publish busy/idle"
