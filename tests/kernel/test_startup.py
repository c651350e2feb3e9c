"""Start-up (issue 12 #20): the kernel answers before the engine starts, and nothing is lost by that.

The engine, its runtime, the services and the hub start right after the
first kernel_info reply (`VTKernel.boot`), before any other message is
handled, or after `BOOT_FALLBACK_SECONDS` when no frontend asks anything.
The times are in `benchmarks/bench_spine.py`; these tests check what the
deferral must not break, and that the kernel's module stays light.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.conftest import PLUGIN_TYPE, VTClient, own_client, plugin_site, start_kernel, stop_kernel

HEAVY = ("vtkernel.engine", "vtkernel.api", "vtkernel.session", "vtkernel.live", "vtkernel.protocol", "pydantic", "immutables")


def test_the_kernel_module_loads_no_engine_protocol_or_pydantic() -> None:
    """What `python -m vtkernel` imports before the first reply: ipykernel and the shell glue only."""
    code = (
        "import json, sys\n"
        "import vtkernel.kernel.kernel\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(heavy))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert json.loads(out) == [], f"imported before the first kernel_info reply: {out}"


def _start_without_ready(env: dict[str, str] | None = None) -> Any:
    """A kernel process that nobody has sent kernel_info to."""
    import os

    from jupyter_client.manager import KernelManager

    km = KernelManager(kernel_name="vtkernel")
    km.start_kernel(env={**os.environ, **(env or {})})
    return km


def test_a_comm_open_as_the_very_first_message_is_served(jupyter_path: str) -> None:
    """A panel whose comm_open reaches the kernel before any kernel_info gets its snapshot and acks."""
    km = _start_without_ready()
    client = None
    try:
        client = VTClient(km, shell="first")  # sends comm_open at once; no wait_for_ready
        assert client.mirror is not None and client.version >= 0
        ack = client.call({"op": "add_module", "name": "lfo1", "type": "lfo", "params": {}}, timeout=30)
        assert ack["type"] == "ack", ack
        assert client.wait_for(lambda: client is not None and "lfo1" in (client.mirror or {}).get("modules", {}), 10)
    finally:
        if client is not None:
            client.close()
        km.shutdown_kernel(now=True)


def test_a_cell_as_the_very_first_message_has_vt_and_its_magics(jupyter_path: str) -> None:
    km = _start_without_ready()
    kc = own_client(km.connection_file)
    try:
        out: list[str] = []
        reply = kc.execute_interactive(
            "%vt add lfo1 lfo rate=2\nprint(vt.snapshot()['modules']['lfo1']['params']['rate'])",
            timeout=60,
            output_hook=lambda m: out.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        assert "".join(out).split() == ["2.0"], out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_with_no_frontend_at_all_the_engine_still_starts_and_resumes_the_session(jupyter_path: str, tmp_path: Path) -> None:
    """A headless kernel that nobody talks to still boots: the default session's folder is made by the resume."""
    folder = tmp_path / "sessions"
    km = _start_without_ready({"VTKERNEL_SESSION_DIR": str(folder)})
    try:
        deadline = time.monotonic() + 30
        while not folder.is_dir():  # the marker the boot's session resume makes
            assert km.is_alive(), "the kernel died before booting"
            assert time.monotonic() < deadline, "the engine never started without a kernel_info request"
            time.sleep(0.02)
    finally:
        km.shutdown_kernel(now=True)


GATED_PLUGIN = '''
import os, pathlib, time
gate = pathlib.Path(os.environ["VT_TEST_GATE"])
pathlib.Path(str(gate) + ".reached").touch()  # the boot has got this far
deadline = time.monotonic() + 60
while not gate.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
raise ImportError("a test plugin that only holds the boot until its gate opens")
'''


def test_kernel_info_is_answered_while_the_boot_is_still_loading(jupyter_path: str, tmp_path: Path) -> None:
    """A frontend that asks kernel_info again during the boot gets its answer at once, not after the boot.

    jupyter_client's `wait_for_ready` sends a second kernel_info when the first
    takes over a second; its busy/idle used to come out after the boot, behind
    the frontend's first execute (jupyter_kernel_test then read them as the
    execute's own). A module plugin whose import waits for a gate file holds
    the boot here for as long as the test needs.
    """
    site = plugin_site(tmp_path / "site", {"gated_plugin": GATED_PLUGIN})
    gate = tmp_path / "gate"
    reached = Path(str(gate) + ".reached")
    import os

    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    km = _start_without_ready({"PYTHONPATH": pythonpath, "VT_TEST_GATE": str(gate)})
    kc = own_client(km.connection_file)
    try:
        kc.kernel_info()
        assert kc.get_shell_msg(timeout=60)["msg_type"] == "kernel_info_reply"
        deadline = time.monotonic() + 60
        while not reached.exists():  # the boot is under way and held at the plugin
            assert km.is_alive() and time.monotonic() < deadline, "the boot never reached the plugin"
            time.sleep(0.01)
        for _ in range(3):
            kc.kernel_info()
            reply = kc.get_shell_msg(timeout=20)  # the boot is held for 60 s: a blocked main shell fails here
            assert reply["msg_type"] == "kernel_info_reply" and reply["content"]["status"] == "ok", reply["content"]
        assert not gate.exists()
        gate.touch()
        reply = kc.execute_interactive("%vt add lfo1 lfo rate=2", timeout=60)
        assert reply["content"]["status"] == "ok", reply["content"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_a_plugin_that_hangs_or_fails_neither_holds_the_first_cell_nor_goes_unsaid(jupyter_path: str, tmp_path: Path) -> None:
    """A plugin's import runs its own code. One that blocked used to hold the boot, and the first cell
    with it, for ever; one that failed was only in the kernel log, which a notebook user never reads."""
    import os

    release = tmp_path / "release"
    os.mkfifo(release)  # the plugin's import blocks opening it until the test opens the other end
    site = plugin_site(
        tmp_path / "site",
        {
            "vtp_broken": "raise RuntimeError('no licence server')\n",
            "vtp_hangs": f"open({str(release)!r}).read()\n" + PLUGIN_TYPE.format(name="slowtype"),
        },
    )
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    k = start_kernel(env={"PYTHONPATH": pythonpath}, extra_arguments=["--VTKernel.plugin_wait=1"])
    try:
        result = k.execute("vt.module('a', 'lfo')", timeout=60)
        assert result["status"] == "ok", result
        said = result["stderr"]
        assert "vt: module plugin 'vtp_broken' (vtp_broken:Type) failed to load: RuntimeError: no licence server" in said
        assert "vt: module plugin 'vtp_hangs' (vtp_hangs:Type) is still importing after 1 s: the kernel started without it" in said
        assert "unknown module type 'slowtype'" in str(k.execute("vt.module('s', 'slowtype')")["error"])
        client = k.client(shell="terminal")
        with open(release, "w"):  # the import returns: its type registers, and every shell hears so
            pass
        assert client.wait_for(lambda: any(m["source"] == "plugin" for m in client.of_type("report")), timeout=30)
        report = next(m for m in client.of_type("report") if m["source"] == "plugin")
        assert "module plugin 'vtp_hangs' (vtp_hangs:Type) finished importing after" in report["text"], report
        assert report["text"].endswith("type 'slowtype' is ready") and not report["error"]
        result = k.execute("vt.module('s', 'slowtype', level=0.25)")
        assert result["status"] == "ok", result
        assert "finished importing" in result["stderr"]  # said between cells: shown as the next cell starts
        client.close()
    finally:
        stop_kernel(k)
