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


def test_shell_channel_thread_main_and_shell_main_are_overridden_by_subshell_glue_only(kernel: Kernel) -> None:
    # If ipykernel renames or reshapes these private steps, our overrides would
    # silently stop running: no screening of hostile frames, no comm_open reroute,
    # busy/idle pairs for every comm message. Check ipykernel's own signatures too.
    out = kernel.ok(
        "import inspect\n"
        "from ipykernel.kernelbase import Kernel as Base\n"
        "from vtkernel.kernel import kernel as vk, subshell\n"
        "K = type(get_ipython().kernel)\n"
        "for name, params in (('shell_channel_thread_main', ['self', 'msg']), ('shell_main', ['self', 'subshell_id', 'msg'])):\n"
        "    base = getattr(Base, name, None)\n"
        "    print(name, base is not None and inspect.iscoroutinefunction(base) and list(inspect.signature(base).parameters) == params,\n"
        "          getattr(K, name) is getattr(subshell.HubShellRouting, name), name in vk.VTKernel.__dict__)"
    )
    assert out.splitlines() == [
        "shell_channel_thread_main True True False",
        "shell_main True True False",
    ], f"ipykernel's private shell steps changed, or the kernel overrides them outside subshell.HubShellRouting: {out}"
