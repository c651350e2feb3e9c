"""Ableton Link between real vtkernels and a third-party peer, in a private network namespace (SPEC §10).

Link discovers peers by multicast on every interface, so everything here
runs inside a namespace this test makes (`unshare -n`, loopback only, with
multicast routed to it): `tests/link/_scenario.py` starts two kernels, a UDP
receiver and a plain `aalink` peer there and reports what it measured.
Where a namespace cannot be made (not root, no `unshare`), the test skips
and says so; it never runs Link on the machine's real network.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def namespace_problem() -> str | None:
    if importlib.util.find_spec("aalink") is None:
        return "aalink is not installed (pip install 'vtkernel[link]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare and ip (util-linux, iproute2) are needed to make a private network namespace"
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a private network namespace here: {probe.stderr.strip() or probe.returncode}"
    return None


@pytest.fixture(scope="module")
def scenario() -> dict:
    why = namespace_problem()
    if why is not None:
        pytest.skip(why)
    out = subprocess.run(
        ["unshare", "-n", sys.executable, str(HERE / "_scenario.py"), "--seconds", "4"],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONPATH": str(HERE.parents[1])},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_two_kernels_share_the_beat_grid_within_a_millisecond(scenario: dict) -> None:
    assert min(scenario["onsets"]) >= 6
    assert scenario["phase_error_ms"]["max"] < 1.0, scenario["phase_error_ms"]


def test_a_kernel_joining_late_takes_the_sessions_tempo_and_lines_up_its_bars(scenario: dict) -> None:
    assert scenario["b_adopted_tempo"]  # it played at 90 bpm alone, then joined a 120 bpm session
    for side in ("a", "b"):
        link = scenario["telemetry"][side]
        assert link["peers"] == 1 and link["quantum"] == 4.0
        assert abs(link["phase_offset_ms"]) < 1.0


def test_a_tempo_change_on_one_kernel_reaches_the_other(scenario: dict) -> None:
    assert scenario["tempo_reached_b"]
    assert scenario["a_kept_its_typed_tempo"] == "133.0"  # not Link's 132.999947


def test_a_third_party_peer_sets_the_tempo_and_both_kernels_follow(scenario: dict) -> None:
    assert scenario["third_party_saw"] == "peers 2"
    assert scenario["third_party_a"] and scenario["third_party_b"]


def test_the_peer_count_keeps_coming_while_stopped(scenario: dict) -> None:
    assert scenario["peers_while_stopped"]  # kernel B and a new third-party peer, seen by a stopped kernel A


def test_with_start_stop_sync_one_kernels_play_and_stop_reach_the_other(scenario: dict) -> None:
    assert scenario["sync_started_a"] and scenario["sync_stopped_a"]
    assert scenario["sync_off_a"] == "False"  # `link on` alone shares tempo and phase, not play/stop
