"""Reliability: hostile comm input and load against a real kernel (issue 14 #1-#4, #6).

Every attack of the review's "Comm input" and "Lost acks under load" items is
replayed against a real vtkernel through jupyter_client over ZMQ (the same
hand-signed frames as `tests/kernel/test_hostile.py`). For each it reports
what the attacker got back, and whether it held:

- held: the expected error (one line), the document unchanged, a bystander
  client still acked, a newcomer still given its snapshot, and no traceback
  in the kernel log or in any cell's output;
- lost data: anything else (the row says what).

The load row sends 2,000 commands from each of five clients, each on its own
connection, while a cell writes in a loop, and counts the acks that arrived
and the most iopub messages any connection received in one second (kernel
send times, status messages included).

    python benchmarks/bench_comm_attacks.py [--no-load]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import Kernel, VTClient, own_client, start_kernel, stop_kernel
from tests.kernel.test_acks_under_load import max_per_second
from tests.kernel.test_hostile import SURROGATE, ascii_json, send_frames


def install_kernelspec() -> None:
    from vtkernel.kernel.install import install

    prefix = tempfile.mkdtemp(prefix="vt-bench-")
    install(prefix=prefix)
    os.environ["JUPYTER_PATH"] = str(Path(prefix) / "share" / "jupyter")


def data_frame(c: VTClient, data: Any) -> tuple[str, bytes]:
    return "comm_msg", ascii_json({"comm_id": c.comm_id, "data": data})


def raw_command(c: VTClient, msg_id: str, command: bytes) -> tuple[str, bytes]:
    head = b'{"comm_id": "' + c.comm_id.encode() + b'", "data": {"type": "command", "id": "' + msg_id.encode() + b'", "command": '
    return "comm_msg", head + command + b"}}"


def cmd(c: VTClient, msg_id: str, command: dict[str, Any]) -> tuple[str, bytes]:
    return data_frame(c, {"type": "command", "id": msg_id, "command": command})


# What each attack did before the fixes (the review's reproduction; the load row as measured here
# on the code before, with benchmarks' same client: 1,351/1,330/1,379/1,357/1,299 acks of 2,000).
BEFORE = {
    "#1": "accepted; then every delta failed to encode and each client was dropped silently",
    "#2": "accepted",
    "#3": "no reply; ipykernel logged a traceback",
    "#4": "accepted; every delta to everyone carried the 900 kB origin",
    "#6": "6,716 of 10,000 acks; peak 1,230 iopub msg/s (status pairs); 3,439 resync snapshots",
    "#1 lone surrogate in a name": "invalid_command (names were ASCII already)",
    "#1 lone surrogate in a hello's shell": "subscribed; every delta to everyone then failed to encode",
    "#3 a message over 1 MiB": "bad_message (this one held before too)",
    "#3 JSON nested 10,000 deep": "bad_message 'internal error: RecursionError' (disguised)",
    "#6 eager": "the first command of a new comm could reach the main shell before the comm existed: dropped, no ack (19 of 20 in a test)",
}

ATTACKS: list[tuple[str, str, Callable[[VTClient], tuple[str, bytes]]]] = [
    ("#1 lone surrogate in a value", "invalid_value", lambda c: cmd(c, "a", {"op": "set_param", "module": "o", "param": "host", "value": SURROGATE})),
    (
        "#1 lone surrogate nested in a batch",
        "invalid_value",
        lambda c: cmd(c, "a", {"op": "batch", "commands": [{"op": "add_module", "name": "s", "type": "seq", "params": {"steps": [[SURROGATE]]}}]}),
    ),
    ("#1 lone surrogate in a name", "invalid_command", lambda c: cmd(c, "a", {"op": "remove_module", "name": "o" + SURROGATE})),
    (
        "#1 lone surrogate in a hello's shell",
        "bad_message",
        lambda c: ("comm_open", ascii_json({"comm_id": "attack-hello", "target_name": "vtkernel.state", "data": {"protocol": 1, "shell": SURROGATE}})),
    ),
    ("#2 a name with a trailing newline", "invalid_command", lambda c: cmd(c, "a", {"op": "add_module", "name": "lfo\n", "type": "lfo"})),
    ("#2 a port with a trailing newline", "invalid_command", lambda c: cmd(c, "a", {"op": "connect", "src": "o.in\n", "dst": "o.port"})),
    ("#3 JSON nested 10,000 deep", "bad_message", lambda c: raw_command(c, "a", b"[" * 10_000 + b"]" * 10_000)),
    (
        "#3 a 5,001-digit integer",
        "bad_message",
        lambda c: raw_command(c, "a", b'{"op": "set_param", "module": "o", "param": "port", "value": ' + b"7" * 5001 + b"}"),
    ),
    ("#3 a frame that is not JSON", "bad_message", lambda c: raw_command(c, "a", b'{"op" "set_bpm"')),
    ("#3 a message over 1 MiB", "bad_message", lambda c: cmd(c, "a", {"op": "set_param", "module": "o", "param": "host", "value": "x" * (1 << 20)})),
    (
        "#4 a 900 kB shell name",
        "bad_message",
        lambda c: ("comm_open", ascii_json({"comm_id": "attack-hello", "target_name": "vtkernel.state", "data": {"protocol": 1, "shell": "x" * 900_000}})),
    ),
]


def attack_row(kernel: Kernel, log: Path, name: str, expected: str, make: Callable[[VTClient], tuple[str, bytes]]) -> str:
    before = kernel.ok("%vt state")
    log_before = log.stat().st_size
    attacker = kernel.client(shell="attacker")
    bystander = kernel.client(shell="bystander")
    kind, frame = make(attacker)
    send_frames(attacker, kind, frame)
    if kind == "comm_open":
        ok = attacker.wait_for(lambda: {"type": "comm_close"} in attacker.others.get("attack-hello", []), 10)
        got = attacker.others.get("attack-hello", [{}])[0] if ok else {}
    else:
        got = attacker.reply("a", 10)
    code = got.get("error", {}).get("code", got.get("type", "nothing"))
    one_line = "\n" not in got.get("error", {}).get("message", "")
    unchanged = kernel.ok("%vt state") == before
    served = bystander.call({"op": "set_bpm", "bpm": 120})["type"] == "ack"
    newcomer = kernel.client(shell="newcomer")
    snapshot = newcomer.mirror is not None
    origins_ok = all(len(m["origin"]) <= 64 for c in (attacker, bystander) for m in c.of_type("delta"))
    for c in (attacker, bystander, newcomer):
        c.close()
    kernel.ok("print('sync')")
    with open(log) as f:
        f.seek(log_before)
        traceback = "Traceback" in f.read()
    traceback = traceback or any("Traceback" in "".join(c.stderr) for c in (attacker, bystander))
    checks = {
        f"expected {expected}": code == expected,
        "one line": one_line,
        "state unchanged": unchanged,
        "bystander acked": served,
        "newcomer snapshot": snapshot,
        "origins <= 64": origins_ok,
        "no traceback": not traceback,
    }
    failed = [k for k, v in checks.items() if not v]
    outcome = "held" if not failed else "lost data: " + ", ".join(failed)
    return f"| {name} | {BEFORE.get(name, BEFORE[name[:2]])} | `{code}` | {outcome} |"


def eager_row(kernel: Kernel, rounds: int = 20, commands: int = 20) -> str:
    """Commands sent right after comm_open, before the snapshot, as an eager frontend may."""
    probe = kernel.client(shell="probe")
    got = 0
    for r in range(rounds):
        comm_id = f"eager-{r}"
        probe._send_raw("comm_open", {"comm_id": comm_id, "target_name": "vtkernel.state", "data": {"protocol": 1, "shell": "eager"}})
        for i in range(commands):
            probe._send_raw("comm_msg", {"comm_id": comm_id, "data": {"type": "command", "id": i, "command": {"op": "set_bpm", "bpm": 100 + i}}})

        def acks(comm_id: str = comm_id) -> set[Any]:
            return {m.get("id") for m in probe.others.get(comm_id, []) if m.get("type") == "ack"}

        probe.wait_for(lambda acks=acks: len(acks()) == commands, 10)
        got += len(acks())
        probe._send_raw("comm_close", {"comm_id": comm_id, "data": {}})  # unsubscribe, so later rows serve only their clients
    probe.close()
    sent = rounds * commands
    outcome = "held" if got == sent else f"lost data: {sent - got} acks missing"
    return f"| #6 {rounds} comm_opens, each followed at once by {commands} commands | {BEFORE['#6 eager']} | {got} of {sent} acks | {outcome} |"


def load_row(kernel: Kernel, clients_n: int = 5, commands: int = 2000) -> str:
    flag = Path(tempfile.mkdtemp()) / "stop"
    kernel.ok("vt.module('w', 'lfo')\n" + "".join(f"vt.module('c{i}', 'lfo')\n" for i in range(clients_n)))
    clients = [kernel.client(shell=f"client{i}") for i in range(clients_n)]
    cell = kernel.start_cell(f"import os\ni = 0\nwhile not os.path.exists({str(flag)!r}):\n    vt.set('w.rate', 1 + (i % 500) / 10)\n    i += 1\n")
    started = time.time()
    ids: list[list[int]] = [[] for _ in clients]
    for n in range(commands):
        for i, c in enumerate(clients):
            ids[i].append(c.command({"op": "set_param", "module": f"c{i}", "param": "rate", "value": 1 + n % 100}))
    for i, c in enumerate(clients):
        want = set(ids[i])
        c.wait_for(lambda c=c, want=want: want <= {m["id"] for m in c.messages if m["type"] in ("ack", "error")}, 180)
    took = time.time() - started
    flag.write_text("stop")
    kernel.finish_cell(cell)
    got = sum(len(set(ids[i]) & {m["id"] for m in c.messages if m["type"] == "ack"}) for i, c in enumerate(clients))
    peak = max(max_per_second([t for t, _ in c.iopub if t >= started]) for c in clients)
    for c in clients:
        c.close()
    sent = clients_n * commands
    outcome = "held" if got == sent and peak <= 500 else f"lost data: {sent - got} acks missing" if got < sent else f"over budget: {peak}/s"
    return (
        f"| #6 {clients_n} clients on {clients_n} connections x {commands:,} commands while a cell writes in a loop "
        f"| {BEFORE['#6']} | {got:,} of {sent:,} acks in {took:.0f} s; peak {peak} iopub msg/s at a connection | {outcome} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-load", action="store_true", help="skip the 40 s load row")
    args = ap.parse_args()
    install_kernelspec()
    log = Path(tempfile.mkdtemp()) / "kernel.log"
    with open(log, "w") as log_file:
        kernel = start_kernel(stderr=log_file)
        try:
            kernel.ok("vt.module('o', 'osc_out')")
            rows = [attack_row(kernel, log, *a) for a in ATTACKS]
            rows.append(eager_row(kernel))
            if not args.no_load:
                kernel.kc.stop_channels()
                kernel = Kernel(kernel.km, own_client(kernel.connection_file))
                rows.append(load_row(kernel))
        finally:
            stop_kernel(kernel)
    held = sum(1 for r in rows if r.endswith("| held |"))
    print(f"{len(rows)} attacks tried, {held} held, {len(rows) - held} lost data or broke a rule.\n")
    print("| attack (issue 14) | before the fix | what the attacker gets now | outcome now |")
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(
        "\nheld = the expected one-line error, the document unchanged, a bystander still acked, a newcomer still "
        "given its snapshot, every origin at most 64 characters, and no traceback in the kernel log or any cell's output. "
        "The same attacks are tests in `tests/kernel/test_hostile.py` and `tests/kernel/test_acks_under_load.py`."
    )


if __name__ == "__main__":
    main()
