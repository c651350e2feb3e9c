"""The terminal shell against a real kernel (SPEC §4 "Terminal shell").

`python -m vtkernel shell --existing CONNECTION_FILE` runs as a subprocess:
in batch mode (stdin is a pipe) and interactively in a pseudo-terminal.
Changes from other clients (a cell, another comm) must be printed as
`vN MODULE.PARAM = VALUE (origin)`; the shell's own changes must not be.
"""

from __future__ import annotations

import fcntl
import os
import pty
import queue
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Kernel

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB0-2]|\x1b[=>]|\r")


def shell_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vtkernel", "shell", *args]


def run_batch(args: list[str], text: str, history: Path, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The shell in batch mode (stdin is a pipe): `text` in, its output back."""
    return subprocess.run(
        shell_cmd(*args), input=text, capture_output=True, text=True, timeout=60, env=shell_env(history, **env), cwd=cwd
    )


@pytest.fixture
def history(tmp_path: Path) -> Path:
    return tmp_path / "history"


def shell_env(history: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, VTKERNEL_SHELL_HISTORY=str(history), PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm", **extra)
    env.pop("JUPYTER_RUNTIME_DIR", None)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def k(shared_kernel: Kernel) -> Kernel:
    shared_kernel.ok('vt.module("lfo1", "lfo", rate=2.0)\nvt.module("lfo2", "lfo", rate=0.5)')
    return shared_kernel


class Lines:
    """The stdout of a running shell, line by line, with timeouts (a reader thread)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.q: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.q.put(line.rstrip("\n"))

    def next(self, timeout: float = 10) -> str:
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("the shell printed nothing") from None

    def none_within(self, seconds: float) -> bool:
        try:
            line = self.q.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected line {line!r}")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()


@pytest.fixture
def batch_shell(k: Kernel, history: Path, tmp_path: Path) -> Iterator[Lines]:
    proc = subprocess.Popen(
        shell_cmd("--existing", k.connection_file),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        env=shell_env(history),
        cwd=tmp_path,
    )
    lines = Lines(proc)
    try:
        yield lines
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(15)


def test_batch_mode_prints_one_line_per_ack_or_error(k: Kernel, history: Path, tmp_path: Path) -> None:
    script = "\n".join(
        ["set lfo1.rate 3", "get lfo1.rate", "set lfo1.rate -1", "set nope.rate 1", "bogus", "# a comment", ""]
    )
    run = run_batch(["--existing", k.connection_file], script, history, tmp_path)
    lines = run.stdout.splitlines()
    assert len(lines) == 5, run
    assert re.fullmatch(r"ok v\d+", lines[0])
    assert lines[1] == "3.0"
    assert lines[2] == "error [invalid_value] lfo1.rate must be > 0, got -1"
    assert lines[3].startswith("error [unknown_module]")
    assert lines[4].startswith("error [invalid_command] unknown command 'bogus'")
    assert run.returncode == 1  # a script with errors fails, like a cell
    assert not history.exists()  # only interactive lines are history


def test_changes_made_elsewhere_are_printed_and_own_changes_are_not(k: Kernel, batch_shell: Lines) -> None:
    batch_shell.send("set lfo2.rate 0.25")
    own = batch_shell.next()
    assert re.fullmatch(r"ok v\d+", own)
    own_version = int(own.split("v")[1])

    k.ok('vt.module("lfo1", "lfo", rate=5.5, shape="saw")')
    seen = {batch_shell.next(), batch_shell.next()}
    version = own_version + 1
    assert seen == {f"v{version} lfo1.rate = 5.5 (cell)", f'v{version} lfo1.shape = "saw" (cell)'}

    editor = k.client(shell="editor")
    try:
        assert editor.call({"op": "set_param", "module": "lfo2", "param": "depth", "value": 0.5})["type"] == "ack"
        assert batch_shell.next() == f"v{version + 1} lfo2.depth = 0.5 (editor)"
        assert editor.call({"op": "connect", "src": "lfo1.out", "dst": "lfo2.rate"})["type"] == "ack"
        assert batch_shell.next() == f"v{version + 2} connect lfo1.out lfo2.rate (editor)"
    finally:
        editor.close()

    # the shell's own command: an ack and nothing else
    batch_shell.send("set lfo2.depth 0.75")
    assert batch_shell.next() == f"ok v{version + 3}"
    assert batch_shell.none_within(0.5)


def test_the_shell_is_answered_while_a_cell_runs(k: Kernel, batch_shell: Lines) -> None:
    batch_shell.send("get lfo1.rate")
    batch_shell.next()
    msg_id = k.start_cell("import time; time.sleep(3)")  # returns once the cell is running
    try:
        start = time.monotonic()
        batch_shell.send("set lfo1.depth 0.5")
        assert re.fullmatch(r"ok v\d+", batch_shell.next(timeout=2))
        assert time.monotonic() - start < 1.5
    finally:
        assert k.finish_cell(msg_id)["status"] == "ok"


def test_without_a_file_it_attaches_to_the_most_recent_kernel(k: Kernel, history: Path, tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    stale = runtime / "kernel-old.json"
    stale.write_text(
        '{"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, '
        '"ip": "127.0.0.1", "key": "x", "transport": "tcp", "signature_scheme": "hmac-sha256"}'
    )
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    shutil.copy(k.connection_file, runtime / "kernel-new.json")
    os.utime(runtime / "kernel-new.json", (time.time() - 60, time.time() - 60))
    # Another notebook's ipykernel started after ours: its file is newer, and must not be picked.
    other = runtime / "kernel-other.json"
    other.write_text(stale.read_text().replace('"hmac-sha256"}', '"hmac-sha256", "kernel_name": "python3"}'))
    run = run_batch(["--existing"], "get lfo1.shape\n", history, tmp_path, JUPYTER_RUNTIME_DIR=str(runtime))
    assert run.stdout.splitlines() == ['"saw"'], run


def test_a_missing_connection_file_is_one_clear_line(history: Path, tmp_path: Path) -> None:
    run = run_batch(["--existing", str(tmp_path / "nope.json")], "", history, tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith("error: no kernel connection file found")
    assert "Traceback" not in run.stderr


# --------------------------------------------------------------------------
# Interactive, in a pseudo-terminal
# --------------------------------------------------------------------------


class Pty:
    """A shell running on a pseudo-terminal; `expect` waits for text on the screen stream."""

    def __init__(self, cmd: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 110, 0, 0))
        self.proc = subprocess.Popen(
            cmd, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd, start_new_session=True
        )
        os.close(slave)
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 10) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.seen)
            if m:
                self.seen = self.seen[m.end() :]
                return m
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern!r} not seen; screen stream ends with {self.seen[-400:]!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    data = os.read(self.master, 65536)
                except OSError:
                    data = b""
                if not data:
                    raise AssertionError(f"the shell exited before {pattern!r}; it printed {self.seen[-400:]!r}")
                self.seen += ANSI.sub("", data.decode(errors="replace"))

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def close(self) -> int:
        try:
            return self.proc.wait(10)
        finally:
            os.close(self.master)


def test_interactive_shell_with_completion_changes_and_history_across_runs(
    k: Kernel, history: Path, tmp_path: Path
) -> None:
    env = shell_env(history)
    first = Pty(shell_cmd("--existing", k.connection_file), env, tmp_path)
    try:
        first.expect(r"vtkernel shell attached to \S+\.json \(vtkernel\): v\d+, 2 modules")
        first.expect(r"vt>")
        first.type("set lfo1.rate 2.5\r")
        first.expect(r"ok v\d+")
        # Tab completes a param name from the mirror
        first.type("get lfo1.ra\t")
        first.expect(r"get lfo1\.rate")
        first.type("\r")
        first.expect(r"2\.5")
        # a change from a cell is printed above the prompt while it waits
        first.expect(r"vt>")
        k.ok('vt.module("lfo2", "lfo", depth=0.125)')
        first.expect(r"v\d+ lfo2\.depth = 0\.125 \(cell\)")
        first.expect(r"vt>")  # the prompt is drawn again below the change line
        first.type("quit\r")
        assert first.close() == 0
    finally:
        first.proc.kill()
    assert "set lfo1.rate 2.5" in history.read_text()

    second = Pty(shell_cmd("--existing", k.connection_file), env, tmp_path)
    try:
        second.expect(r"vt>")
        second.type("\x1b[A")  # Up: the last line of the previous run
        second.expect(r"quit")
        second.type("\x1b[A")  # and the one before it
        second.expect(r"get lfo1\.rate")
        second.type("\r")
        second.expect(r"2\.5")
        second.expect(r"vt>")  # keys typed before the prompt is back go to the tty's cooked mode
        second.type("\x04")
        assert second.close() == 0
    finally:
        second.proc.kill()


def test_batch_mode_stops_at_quit_or_exit(k: Kernel, history: Path, tmp_path: Path) -> None:
    for word in ("exit", "quit"):
        run = run_batch(["--existing", k.connection_file], f"get lfo1.shape\n{word}\nget lfo2.shape\n", history, tmp_path)
        assert run.returncode == 0 and run.stdout.splitlines() == ['"saw"'], run


def test_the_banner_names_the_kernel_and_counts_modules_in_words(tmp_path: Path) -> None:
    from shells.terminal import TerminalShell, banner, describe_connection

    conn = tmp_path / "kernel-abc.json"
    conn.write_text('{"kernel_name": "vtkernel"}')
    shell = TerminalShell(client=None)
    for modules, words in (({"a": {}}, "1 module."), ({}, "0 modules."), ({"a": {}, "b": {}}, "2 modules.")):
        shell.mirror.load({"version": 3, "state": {"modules": modules}})
        assert banner(shell, describe_connection(str(conn))).startswith(f"vtkernel shell attached to kernel-abc.json (vtkernel): v3, {words}")
