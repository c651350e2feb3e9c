"""A real SuperCollider server without a sound card, for tests, notebooks and trying things out.

    from vtkernel.testing.scsynth import ScsynthServer
    with ScsynthServer() as server:          # jackd (dummy driver) + scsynth on a free UDP port
        server.port                          # give it to vt.scsynth(port=...)
        server.started                       # [(arrival, node id), ...] from /n_go
        server.late_lines()                  # scsynth's `late 0.0xx` lines
        server.start_recording(path); ...; server.stop_recording()

Debian's `scsynth` supports only JACK, so this starts `jackd -d dummy` under a
server name no running jackd has (from a small pool) first. Where the user
may, JACK runs at real-time priority (`-R`; scsynth's audio thread follows):
on a busy machine the dummy driver's late wake-ups otherwise make scsynth's
clock jump, so several scheduled sounds fire in one block; elsewhere it runs
`--no-realtime` (its sample clock comes from
sleeps, so it drifts from wall time by a few ms a minute: anchor recordings
with reference sounds of your own), then `scsynth -u PORT` with
`JACK_DEFAULT_SERVER` pointing at it. Readiness is awaited, never guessed:
`jack_wait -w` for JACK, then `/status` until `/status.reply`. A client socket
sends `/notify 1` and collects `/n_go`, `/n_end`, `/done` and `/fail`; a
thread reads scsynth's output (line-buffered) for `late` lines.

`unavailable()` says in one line why this cannot run here (no scsynth or
jackd), so callers can skip cleanly.

Owner: the thread that made the server calls its methods; two daemon threads
(output reader, OSC reader) only append to lists under `_cond`.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder

# DiskOut's buffer (a power of two). DiskOut writes it to the file half a buffer at a time from
# scsynth's non-real-time thread: a small buffer overruns (drops audio) when the machine is busy,
# and the last half-buffer (0.68 s at 48 kHz) reaches the file only if recording goes on that long.
RECORD_FRAMES = 65536
JACK_RT_PRIORITY = 70  # jackd -P; scsynth's audio thread then runs a little below it
JACK_NAMES = tuple(f"vtkernel{i}" for i in range(6))  # JACK server names this helper uses (see `_start_jackd`)
INSTALL_HINT = "install them with: apt-get install jackd2 supercollider-server (or bash scripts/apt-deps.sh)"


class ScsynthUnavailable(RuntimeError):
    """jackd or scsynth is missing or did not start; the message is one line."""


def unavailable() -> str | None:
    """None if jackd and scsynth can be run here, else one line saying what is missing."""
    missing = [name for name in ("jackd", "jack_wait", "scsynth") if shutil.which(name) is None]
    if missing:
        return f"{' and '.join(missing)} not found; {INSTALL_HINT}"
    return None


def may_use_realtime() -> bool:
    """Whether this user may ask for real-time scheduling (root, or a non-zero RLIMIT_RTPRIO)."""
    try:
        import resource

        return os.geteuid() == 0 or resource.getrlimit(resource.RLIMIT_RTPRIO)[0] > 0
    except (ImportError, AttributeError, OSError):
        return False


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def osc_message(address: str, *args: Any) -> bytes:
    builder = OscMessageBuilder(address)
    for arg in args:
        builder.add_arg(arg)
    return bytes(builder.build().dgram)


class ScsynthServer:
    """jackd + scsynth, started and stopped together. See the module docstring."""

    def __init__(
        self,
        port: int | None = None,
        *,
        sample_rate: int = 48000,
        block: int = 256,
        outputs: int = 2,
        realtime: bool | None = None,
    ) -> None:
        """`realtime`: run JACK (and so scsynth's audio thread) at real-time priority; default: where permitted."""
        self.port = port or free_udp_port()
        self.realtime = may_use_realtime() if realtime is None else realtime
        self.jack_realtime = False  # what JACK actually got
        self.sample_rate = sample_rate
        self.block = block
        self.outputs = outputs
        self.jack_name = ""
        self.log: list[tuple[float, str]] = []  # (monotonic arrival, line) of scsynth's output
        self.jack_log: list[str] = []
        self.replies: list[tuple[float, str, tuple[Any, ...]]] = []  # (wall arrival, address, args)
        self._jackd: subprocess.Popen[str] | None = None
        self._scsynth: subprocess.Popen[str] | None = None
        self._sock: socket.socket | None = None
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._record: tuple[int, int] | None = None  # (buffer, node) while recording

    # ----- life cycle -------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> ScsynthServer:
        why = unavailable()
        if why is not None:
            raise ScsynthUnavailable(why)
        deadline = time.monotonic() + timeout
        try:
            env = self._start_jackd(deadline)
            self._scsynth = subprocess.Popen(
                ["scsynth", "-u", str(self.port), "-R", "0", "-i", "0", "-o", str(self.outputs)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
            )  # fmt: skip
            self._reader(self._scsynth, self._log_line)
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            self._sock.connect(("127.0.0.1", self.port))
            threading.Thread(target=self._read_osc, name="scsynth-replies", daemon=True).start()
            self._await_status(deadline)
            self.request("/notify", 1, reply="/done", timeout=max(0.5, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise
        return self

    def _start_jackd(self, deadline: float) -> dict[str, str]:
        """jackd under the first name of `JACK_NAMES` that no running server has; the environment for scsynth.

        JACK's registry has 8 slots and frees one only on a clean exit or when the same
        name is started again; a fixed pool of names keeps crashed runs from filling it.
        """
        problems = []
        modes = [["-R", "-P", str(JACK_RT_PRIORITY)], ["--no-realtime"]] if self.realtime else [["--no-realtime"]]
        for name in JACK_NAMES:
            env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
            check = subprocess.run(["jack_wait", "-c", "-s", name], capture_output=True, text=True, env=env, check=False)
            if "not running" not in check.stdout:
                continue
            if not modes:
                break
            mode = modes[0]
            self.jack_name, self.jack_log = name, []
            self._jackd = subprocess.Popen(
                ["jackd", "-n", name, *mode, "-d", "dummy", "-r", str(self.sample_rate), "-p", str(self.block)],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, env=env,
            )  # fmt: skip
            log = self.jack_log
            self._reader(self._jackd, log.append)
            wait = subprocess.run(
                ["jack_wait", "-w", "-s", name, "-t", str(max(1, round(deadline - time.monotonic())))],
                capture_output=True, text=True, env=env, check=False,
            )  # fmt: skip
            if wait.returncode == 0 and "server is available" in wait.stdout and self._jackd.poll() is None:
                self.jack_realtime = mode[0] == "-R"
                return env
            if self._jackd.poll() is None:
                self._jackd.kill()
            self._jackd.wait(5)
            problems.append(f"{name} {' '.join(mode)}: {' | '.join(log[-2:]) or wait.stdout.strip()}")
            if mode[0] == "-R":
                modes.pop(0)  # real time refused here: the next name runs without it
        raise ScsynthUnavailable(f"jackd did not start ({'; '.join(problems) or 'every name is in use'})")

    def _await_status(self, deadline: float) -> None:
        assert self._sock is not None
        while True:
            if self._scsynth is not None and self._scsynth.poll() is not None:
                tail = " | ".join(line for _, line in self.log[-3:])
                raise ScsynthUnavailable(f"scsynth exited ({self._scsynth.returncode}): {tail}")
            try:
                self.request("/status", reply="/status.reply", timeout=0.2)
                return
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise ScsynthUnavailable(f"scsynth on udp {self.port} did not answer /status") from None

    def stop(self) -> None:
        """Stop scsynth, then jackd (each by its own pid); safe to call twice."""
        if self._record is not None and self._scsynth is not None and self._scsynth.poll() is None:
            try:
                self.stop_recording()
            except Exception:
                pass
        if self._sock is not None and self._scsynth is not None and self._scsynth.poll() is None:
            try:  # /quit: scsynth leaves JACK cleanly, so jackd can then unregister its name
                self.send("/quit")
                self._scsynth.wait(3)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self._stop.set()
        for proc in (self._scsynth, self._jackd):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # jackd's clean shutdown frees its slot in JACK's registry
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> ScsynthServer:
        return self.start() if self._scsynth is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- what the server said ------------------------------------------------------

    def _reader(self, proc: subprocess.Popen[str], sink: Callable[[str], None]) -> None:
        def run() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                sink(line.rstrip("\n"))

        threading.Thread(target=run, name="scsynth-output", daemon=True).start()

    def _log_line(self, line: str) -> None:
        with self._cond:
            self.log.append((time.monotonic(), line))
            self._cond.notify_all()

    def late_lines(self, since: float = 0.0) -> list[str]:
        """scsynth's `late 0.0xx` lines (bundles that arrived after their timetag), after monotonic `since`."""
        with self._cond:
            return [line for t, line in self.log if t >= since and line.startswith("late")]

    def _read_osc(self) -> None:
        sock = self._sock
        assert sock is not None
        sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(0.05)  # refused while scsynth starts: its port is not open yet
                continue
            arrival = time.time()
            try:
                msg = OscMessage(data)
            except Exception:
                continue
            with self._cond:
                self.replies.append((arrival, msg.address, tuple(msg.params)))
                self._cond.notify_all()

    @property
    def started(self) -> list[tuple[float, int]]:
        """`(wall arrival, node id)` of every `/n_go` since `/notify 1`."""
        with self._cond:
            return [(t, int(args[0])) for t, address, args in self.replies if address == "/n_go"]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    # ----- talking to it -------------------------------------------------------------

    def send(self, address: str, *args: Any) -> None:
        assert self._sock is not None, "the server is not running"
        self._sock.send(osc_message(address, *args))

    def send_bundle(self, timetag: int, address: str, *args: Any) -> None:
        """One message in a bundle with a 64-bit OSC timetag."""
        import struct

        assert self._sock is not None, "the server is not running"
        msg = osc_message(address, *args)
        self._sock.send(b"#bundle\x00" + struct.pack(">Qi", timetag, len(msg)) + msg)

    def request(self, address: str, *args: Any, reply: str, timeout: float = 5.0) -> tuple[Any, ...]:
        """Send a command and wait for its reply (`/done` replies must name the command); `/fail` raises."""
        with self._cond:
            seen = len(self.replies)
        self.send(address, *args)
        found: list[tuple[Any, ...]] = []

        def match() -> bool:
            for _, addr, rargs in self.replies[seen:]:
                if addr == "/fail" and rargs[:1] == (address,):
                    found.append(("/fail", *rargs))
                    return True
                if addr == reply and (reply != "/done" or rargs[:1] == (address,)):
                    found.append(rargs)
                    return True
            return False

        if not self.wait_for(match, timeout):
            raise TimeoutError(f"no {reply} for {address} from scsynth on udp {self.port}")
        if found[0][:1] == ("/fail",):
            raise RuntimeError(f"scsynth: {address} failed: {' '.join(map(str, found[0][2:]))}")
        return found[0]

    def status(self) -> tuple[Any, ...]:
        """`/status.reply` args: unused, ugens, synths, groups, synthdefs, avg cpu, peak cpu, nominal and actual rate."""
        return self.request("/status", reply="/status.reply", timeout=2.0)

    def load_synthdefs(self) -> None:
        """Send the package's SynthDefs and wait until they are loaded."""
        from vtkernel.engine.scsynth import SYNTHDEF_BLOB

        self.request("/d_recv", SYNTHDEF_BLOB, reply="/done")

    # ----- recording --------------------------------------------------------------------

    def start_recording(self, path: str | Path, *, buffer: int = 0, node: int = 999, channels: int = 2) -> None:
        """Record buses 0..channels-1 to a 16-bit WAV on the server: /b_alloc, /b_write (left open), DiskOut at the tail."""
        self.load_synthdefs()
        self.request("/b_alloc", buffer, RECORD_FRAMES, channels, reply="/done")
        self.request("/b_write", buffer, str(path), "wav", "int16", 0, 0, 1, reply="/done")
        self.send("/s_new", "vt_record", node, 1, 0, "buf", buffer, "bus", 0)  # tail of the root group
        if not self.wait_for(lambda: any(a == "/n_go" and r[:1] == (node,) for _, a, r in self.replies), 5.0):
            raise TimeoutError("the recording synth did not start")
        self._record = (buffer, node)

    def stop_recording(self) -> None:
        """Record one more half-buffer (so everything sent so far reaches the file), then stop and close it."""
        if self._record is None:
            return
        buffer, node = self._record
        self._record = None
        time.sleep(1.25 * RECORD_FRAMES / 2 / self.sample_rate)  # audio time: DiskOut's last write
        self.send("/n_free", node)
        self.request("/b_close", buffer, reply="/done")
        self.request("/b_free", buffer, reply="/done")
