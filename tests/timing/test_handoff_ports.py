"""The early spawn's loopback sockets keep off the kernel's own ports (portable hand-off).

jupyter_client picks the kernel's five ports free and releases them; the
kernel binds them only after ipykernel's import. The scheduler spawned before
that import connects back over loopback (Windows; VTKERNEL_PORTABLE=1), and a
socket bound to port 0 could be handed one of those ports: the kernel then
died with "Address already in use" (seen once in a full forced-portable run,
`tests/test_notebooks.py`). Here the ephemeral range is made 20 ports wide
inside a private network namespace, 15 of them the "kernel's", so the OS
hands them out most of the time unless the hand-off refuses them. (A range of
five was too narrow: Linux's bind(0) does not always find the last free port.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from vtkernel import handoff

SCRIPT = textwrap.dedent(
    """
    import json, os, subprocess, sys
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    with open("/proc/sys/net/ipv4/ip_local_port_range", "w") as f:
        f.write("41000 41019")
    from vtkernel import handoff
    avoid = frozenset(range(41000, 41015))
    listener, token = handoff.listen(avoid)
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from vtkernel import handoff; s = handoff.connect_parent(sys.argv[1]); print(s.getsockname()[1])",
         handoff.address(listener)],
        env=handoff.child_env(**{handoff.TOKEN_ENV: token, handoff.AVOID_ENV: ",".join(map(str, sorted(avoid)))}),
        stdout=subprocess.PIPE, text=True,
    )
    conn = handoff.accept_child(listener, token, 30)
    out, _ = child.communicate(timeout=30)
    print(json.dumps({"listener": listener.getsockname()[1], "child": int(out)}))
    """
)


@pytest.mark.skipif(sys.platform != "linux" or shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare -n and ip")
def test_the_hand_off_never_binds_a_port_of_the_kernels_connection_file() -> None:
    proc = subprocess.run(["unshare", "-n", sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {got["listener"], got["child"]} <= set(range(41015, 41020)), got


def test_kernel_ports_are_read_from_the_kernel_command_line(tmp_path) -> None:
    cf = tmp_path / "kernel-1.json"
    ports = {"shell_port": 5001, "iopub_port": 5002, "stdin_port": 5003, "control_port": 5004, "hb_port": 5005}
    cf.write_text(json.dumps({**ports, "ip": "127.0.0.1", "key": "k"}))
    assert handoff.kernel_ports(["-f", str(cf)]) == frozenset(ports.values())
    assert handoff.kernel_ports([f"--f={cf}"]) == frozenset(ports.values())
    assert handoff.kernel_ports([]) == frozenset()
    assert handoff.kernel_ports(["-f", str(tmp_path / "missing.json")]) == frozenset()
    (tmp_path / "bad.json").write_text("{not json")
    assert handoff.kernel_ports(["-f", str(tmp_path / "bad.json")]) == frozenset()
