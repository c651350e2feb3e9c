"""`%vt doctor` and `python -m vtkernel doctor` against a real scsynth and a dead port."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import Kernel
from tests.timing.conftest import free_udp_port
from vtkernel.doctor import Check, probe_scsynth, probe_udp, report
from vtkernel.testing.osc import OscReceiver
from vtkernel.testing.scsynth import ScsynthServer


def test_probes_tell_a_live_scsynth_from_a_dead_port(server: ScsynthServer) -> None:
    live = probe_scsynth("127.0.0.1", server.port, 1.0)
    assert live.status == "ok" and "answers" in live.detail and "48000 Hz" in live.detail
    dead = probe_scsynth("127.0.0.1", free_udp_port(), 1.0)
    assert dead.status == "fail" and "connection refused" in dead.detail and "scsynth -u" in dead.fix
    with OscReceiver() as rx:  # something listens but never answers: scsynth would have
        silent = probe_scsynth("127.0.0.1", rx.port, 0.2)
        assert silent.status == "fail" and "no /status.reply within 200 ms" in silent.detail
        assert probe_udp("osc_out", "127.0.0.1", rx.port, 0.1).status == "ok"
        assert rx.wait_for(2, 2)[-1].address == "/vtkernel/doctor"  # a probe that makes no sound
    assert probe_udp("osc_out", "127.0.0.1", free_udp_port(), 0.2).status == "fail"


def test_report_is_one_line_per_check_with_what_to_do() -> None:
    text = report([Check("a", "ok", "fine", "unused"), Check("b", "fail", "broken", "fix it"), Check("c", "warn", "meh", "try")])
    assert text.splitlines() == [
        "ok    a: fine",
        "FAIL  b: broken  -> fix it",
        "warn  c: meh  -> try",
        "1 ok, 1 warnings, 1 failures",
    ]


def test_vt_doctor_in_a_kernel_checks_the_declared_outputs(k: Kernel, server: ScsynthServer) -> None:
    dead = free_udp_port()
    k.ok(f"vt.scsynth(port={server.port})\nvt.module('viz', 'osc_out', port={dead})")
    out = k.ok("%vt doctor")
    lines = out.splitlines()
    assert any(ln.startswith(f"ok    scsynth (scsynth 127.0.0.1:{server.port}): answers") for ln in lines), out
    assert any(ln.startswith(f"FAIL  viz (osc_out 127.0.0.1:{dead}): nothing listens") and "->" in ln for ln in lines), out
    for name in ("kernelspec", "versions", "MIDI", "priority: the scheduler has", "session directory"):
        assert any(name in ln for ln in lines), (name, out)
    assert lines[-1].endswith("failures")
    k.ok("vt.remove('viz')\nvt.remove('scsynth')")


def test_python_m_vtkernel_doctor_exits_1_when_a_receiver_is_down(server: ScsynthServer) -> None:
    dead = free_udp_port()
    run = subprocess.run(
        [sys.executable, "-m", "vtkernel", "doctor", "--scsynth", f"127.0.0.1:{server.port}", "--scsynth", f"127.0.0.1:{dead}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert f"ok    cli_scsynth0 (scsynth 127.0.0.1:{server.port}): answers" in run.stdout
    assert f"FAIL  cli_scsynth1 (scsynth 127.0.0.1:{dead}): nothing listens" in run.stdout
