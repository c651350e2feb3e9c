"""The one private ipykernel API we rely on (vtkernel/kernel/subshell.py) still works.

If an ipykernel release changes subshells, these fail loudly and say which
part broke, before any user sees a panel freeze during a long cell.
"""

from __future__ import annotations

import time

from tests.conftest import Kernel


def test_the_hub_runs_on_its_own_ipykernel_subshell(kernel: Kernel) -> None:
    out = kernel.ok(
        "import threading\n"
        "k = get_ipython().kernel\n"
        "mgr = k.shell_channel_thread.manager\n"
        "print(k.hub_subshell_id is not None, k.hub_subshell_id in mgr.list_subshell(), k._hub_thread.name.startswith('subshell-'))"
    )
    assert out.split() == ["True", "True", "True"], "the hub subshell was not created (subshell.create_hub_subshell)"


def test_comm_messages_of_hub_comms_are_routed_to_the_subshell(kernel: Kernel) -> None:
    c = kernel.client()
    cell = kernel.start_cell("import time; time.sleep(4)")
    t0 = time.monotonic()
    reply = c.reply(c.text("state"), timeout=3)
    assert reply["type"] == "ack", "comm_msg went to the busy main shell (pin_to_subshell / _reply_subshell_for)"
    assert time.monotonic() - t0 < 2
    kernel.finish_cell(cell)
    c.close()


def test_comm_open_is_rerouted_to_the_subshell(kernel: Kernel) -> None:
    cell = kernel.start_cell("import time; time.sleep(4)")
    t0 = time.monotonic()
    c = kernel.client()  # waits for its snapshot
    assert time.monotonic() - t0 < 2, "comm_open waited for the main shell (reroute_comm_open)"
    kernel.finish_cell(cell)
    c.close()
