"""The scheduler process through a real kernel: `%vt restart` in every shell, priority in `%vt stats`,
and the first note of a fresh kernel on time (issue 11, issue 14 #9)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.conftest import Kernel, start_kernel, stop_kernel
from vtkernel.testing.osc import OscReceiver

LOOKAHEAD = 0.05


@pytest.fixture
def receiver() -> Iterator[OscReceiver]:
    with OscReceiver() as r:
        yield r


def wait_runtime(kernel: Kernel) -> None:
    kernel.ok("assert get_ipython().kernel.runtime.wait_ready(30)")


def play(kernel: Kernel, port: int) -> None:
    kernel.ok(
        "vt.bpm(240)\n"
        "vt.module('s', 'seq', steps=[60], division=4)\n"
        f"vt.module('o', 'osc_out', port={port}, address='/n')\n"
        "vt.connect('s.out', 'o.in')\n"
        "vt.play()"
    )


def test_vt_restart_from_a_cell_and_from_a_protocol_client_keeps_the_beat(kernel: Kernel, receiver: OscReceiver) -> None:
    wait_runtime(kernel)
    play(kernel, receiver.port)
    receiver.wait_for(8, timeout=10)
    pid = kernel.ok("print(get_ipython().kernel.runtime.pid)").strip()
    out = kernel.ok("%vt restart")
    assert re.search(r"scheduler restarted \(process \d+\), the transport continues at beat [\d.]+", out), out
    beat = float(out.rsplit("beat", 1)[1])
    assert beat > 1.0  # not from 0
    assert kernel.ok("print(get_ipython().kernel.runtime.pid)").strip() != pid
    c = kernel.client(shell="terminal")
    try:
        reply = c.reply(c.text("restart"), timeout=30)
        assert reply["type"] == "ack", reply
        assert "scheduler restarted" in reply.get("output", "")
    finally:
        c.close()
    n = len(receiver.received)
    got = receiver.wait_for(n + 8, timeout=10)[n:]
    assert all((r.ahead or 0) > 0 for r in got)
    assert "restart" in kernel.ok("%vt help")


def test_stats_say_which_priority_the_scheduler_got(kernel: Kernel) -> None:
    wait_runtime(kernel)
    stats = kernel.ok("%vt stats")
    m = re.search(r"priority[=\s]+([^,\n]+)", stats)
    assert m, stats
    assert re.fullmatch(r"SCHED_FIFO \d+|SCHED_RR \d+|nice -?\d+|HIGH_PRIORITY_CLASS|normal \(.*\)", m.group(1).strip())


FIRST_NOTE = """
import time
vt.bpm(240)
vt.module('s', 'seq', steps=[60], division=4)
vt.module('o', 'osc_out', port={port}, address='/first')
vt.connect('s.out', 'o.in')
vt.flush()
t0 = time.time()
vt.play()
print(repr(t0))
"""


def test_the_first_note_of_a_fresh_kernel_sounds_within_the_lookahead_plus_20_ms(
    jupyter_path: str, receiver: OscReceiver
) -> None:
    k = start_kernel()
    try:
        # A fresh kernel, as a user gets it: the first cells run as soon as it answers.
        t0 = float(k.ok(FIRST_NOTE.format(port=receiver.port)).strip())
        first = receiver.wait_for(1, timeout=10)[0]
        assert first.timetag is not None
        sounds = first.timetag / (1 << 32) - 2_208_988_800
        assert sounds - t0 <= LOOKAHEAD + 0.020, f"first note sounds {1000 * (sounds - t0):.1f} ms after play"
        assert (first.ahead or 0) > 0  # and it arrived before its time
    finally:
        stop_kernel(k)
