"""`python -m vtkernel`: its own help, clear errors, and the kernel launch path the kernelspec uses."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest


def vtkernel(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vtkernel", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("help",), ()])
def test_help_is_vtkernels_own_and_lists_its_commands(args: tuple[str, ...]) -> None:
    run = vtkernel(*args)
    assert run.returncode == 0 and run.stderr == ""
    commands = [line.split()[0] for line in run.stdout.split("commands:")[1].splitlines() if line.startswith("  ") and line[2] != " "]
    assert {"install", "shell", "doctor", "kernel", "help"} <= set(commands)
    assert "an enhanced interactive Python shell" not in run.stdout and "--help-all" not in run.stdout  # not IPython's


@pytest.mark.parametrize("command", ["install", "shell", "doctor"])
def test_the_usage_names_every_option_a_command_takes(command: str) -> None:
    """Each command's own argparse help is the truth; the top-level usage must not hide an option of it."""
    usage = vtkernel(command, "--help").stdout.split("\n\n")[0]  # argparse's "usage: ..." paragraph
    options = set(re.findall(r"--[a-z][a-z-]*", usage)) - {"--help"}
    assert options, "no options read from the command's own usage"
    line = next(ln for ln in vtkernel("--help").stdout.splitlines() if ln.startswith(f"  {command} "))
    assert {o for o in options if o not in line} == set()


def test_an_unknown_command_is_one_clear_line_then_the_usage() -> None:
    run = vtkernel("frobnicate")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines()[0] == "python -m vtkernel: unknown command 'frobnicate'"
    assert "Traceback" not in run.stderr


def test_subcommands_keep_their_own_help() -> None:
    assert "--existing" in vtkernel("shell", "--help").stdout
    assert "--sys-prefix" in vtkernel("install", "--help").stdout


def test_the_kernel_launch_path_still_runs_the_kernel(tmp_path: Path) -> None:
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import write_connection_file

    conn, _ = write_connection_file(str(tmp_path / "kernel-cli.json"), kernel_name="vtkernel")
    proc = subprocess.Popen([sys.executable, "-m", "vtkernel", "-f", conn], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kc = BlockingKernelClient(connection_file=conn)
    kc.load_connection_file()
    kc.start_channels()
    try:
        reply = kc.kernel_info(reply=True, timeout=60)
        assert reply["content"]["implementation"] == "vtkernel"
    finally:
        kc.stop_channels()
        proc.terminate()
        proc.wait(15)
