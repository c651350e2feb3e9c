"""`%vt doctor` and `python -m vtkernel doctor`: the pre-flight check a performer runs before a show.

One line per check, `ok`, `warn` or `FAIL`, each failing one with what to do:

- the `vtkernel` kernelspec, and that the Python it points to imports this vtkernel;
- the versions that matter (vtkernel, ipykernel, python-osc, mido, python-rtmidi, supriya, aalink);
- each declared output's receiver: scsynth must answer `/status` with `/status.reply`
  (within `timeout`); other OSC receivers get one UDP datagram, and on loopback a
  refusal (ICMP port unreachable, seen as ECONNREFUSED) means nothing listens;
- the MIDI backend and its output ports (and each `midi_out`'s port);
- the scheduling priority the timing process gets (from the running scheduler in a
  kernel; from a throwaway child running the scheduler's own request otherwise);
- whether the session directory is writable, with enough free space.

The probes send nothing that sounds: `/status` to scsynth, `/vtkernel/doctor` (an
address no receiver acts on) to the others. Nothing here changes the document.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from vtkernel import __version__

PROBE_ADDRESS = "/vtkernel/doctor"
FREE_WARN_MB = 500
FREE_FAIL_MB = 20
VERSIONS = (  # (distribution, needed?, what it is for)
    ("vtkernel", True, ""),
    ("ipykernel", True, ""),
    ("jupyter_client", True, ""),
    ("python-osc", True, "OSC output"),
    ("mido", False, "MIDI: pip install 'vtkernel[midi]'"),
    ("python-rtmidi", False, "MIDI ports: pip install 'vtkernel[midi]'"),
    ("supriya", False, "only to rebuild the shipped SynthDefs: pip install 'vtkernel[dev]'"),
    ("aalink", False, "Ableton Link"),
)
RT_HINT = (
    "for real-time priority allow it: a line '@audio - rtprio 95' in /etc/security/limits.d/audio.conf "
    "and your user in group audio (log in again), or CAP_SYS_NICE"
)


@dataclass(frozen=True)
class Check:
    """One line of the report: `status` is ok, warn or fail; `fix` says what to do when it is not ok."""

    name: str
    status: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[self.status]
        text = f"{mark}  {self.name}: {self.detail}"
        return f"{text}  -> {self.fix}" if self.fix and self.status != "ok" else text


def report(checks: Iterable[Check]) -> str:
    checks = list(checks)
    counts = {s: sum(c.status == s for c in checks) for s in ("ok", "warn", "fail")}
    summary = f"{counts['ok']} ok, {counts['warn']} warnings, {counts['fail']} failures"
    return "\n".join([*(c.line() for c in checks), summary])


# ----- the checks --------------------------------------------------------------------


def check_kernelspec() -> list[Check]:
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

        try:
            spec = KernelSpecManager().get_kernel_spec("vtkernel")
        except NoSuchKernel:
            return [Check("kernelspec", "fail", "no kernelspec named vtkernel", "run: python -m vtkernel install --user")]
    except Exception as exc:
        return [Check("kernelspec", "fail", f"cannot read kernelspecs: {exc}", "check your Jupyter installation")]
    python = spec.argv[0] if spec.argv else ""
    where = f"{spec.resource_dir} runs {python}"
    if not python or not os.access(python, os.X_OK):
        return [Check("kernelspec", "fail", f"{where}, which is not an executable", "reinstall: python -m vtkernel install --user")]
    try:
        probe = subprocess.run(
            [python, "-c", "import vtkernel, sys; print(vtkernel.__version__, sys.version.split()[0])"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [Check("kernelspec", "fail", f"{where}, which did not run: {exc}", "reinstall: python -m vtkernel install --user")]
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return [Check("kernelspec", "fail", f"{where}, which cannot import vtkernel ({last})", f"{python} -m pip install vtkernel")]
    version, pyver = [*probe.stdout.split(), "?", "?"][:2]
    if version != __version__:
        return [
            Check(
                "kernelspec", "warn", f"{where} (Python {pyver}) with vtkernel {version}, not this {__version__}",
                "reinstall the kernelspec from the environment you mean: python -m vtkernel install --user",
            )
        ]
    return [Check("kernelspec", "ok", f"{where} (Python {pyver}, vtkernel {version})")]


def check_versions() -> list[Check]:
    found: list[str] = []
    missing: list[tuple[str, str]] = []
    optional: list[tuple[str, str]] = []
    for dist, needed, why in VERSIONS:
        try:
            found.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            (missing if needed else optional).append((dist, why))
    checks = [Check("versions", "ok", f"Python {sys.version.split()[0]}; " + ", ".join(found))]
    for dist, _ in missing:
        checks.append(Check(f"package {dist}", "fail", "not installed", f"pip install {dist}"))
    for dist, why in optional:
        checks.append(Check(f"package {dist}", "ok", f"not installed ({why})"))
    return checks


def probe_scsynth(host: str, port: int, timeout: float) -> Check:
    """`/status` -> `/status.reply` within `timeout`."""
    from vtkernel.engine.scsynth import SYNTHDEF_NAMES, osc_message

    name = f"scsynth {host}:{port}"
    start_hint = f"start it: jackd -d dummy & scsynth -u {port} (no sound card), or boot the server in sclang; see docs/scsynth.md"
    try:
        with _udp(host, port) as sock:
            sock.send(osc_message("/status"))
            deadline = time.monotonic() + timeout
            while True:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                data = sock.recv(65536)
                reply = _parse(data)
                if reply is not None and reply[0] == "/status.reply":
                    break
    except ConnectionRefusedError:
        return Check(name, "fail", "nothing listens (connection refused)", start_hint)
    except TimeoutError:
        return Check(name, "fail", f"no /status.reply within {timeout * 1000:.0f} ms", start_hint)
    except OSError as exc:
        return Check(name, "fail", f"cannot reach it: {exc.strerror or exc}", "check the host and port")
    args = reply[1]
    synths, defs, cpu, rate = args[2], args[4], args[5], args[7]
    detail = f"answers: {synths} synths, {defs} SynthDefs, {cpu:.1f}% CPU, {rate:.0f} Hz"
    if isinstance(defs, int) and defs < len(SYNTHDEF_NAMES):
        detail += "; vtkernel's SynthDefs arrive with the first event"
    return Check(name, "ok", detail)


def probe_udp(kind: str, host: str, port: int, timeout: float) -> Check:
    """One datagram no receiver acts on; on loopback a refusal comes back at once if nothing listens."""
    from vtkernel.engine.scsynth import osc_message

    name = f"{kind} {host}:{port}"
    try:
        with _udp(host, port) as sock:
            sock.send(osc_message(PROBE_ADDRESS))
            sock.settimeout(timeout)
            sock.recv(65536)  # a reply is a bonus; a refusal is what we look for
    except ConnectionRefusedError:
        return Check(name, "fail", "nothing listens (connection refused)", f"start the receiver on UDP port {port}, or set the module's port")
    except TimeoutError:
        pass
    except OSError as exc:
        return Check(name, "fail", f"cannot send to it: {exc.strerror or exc}", "check the host and port")
    if _loopback(host):
        return Check(name, "ok", "a receiver has the port (UDP sent, not refused)")
    return Check(name, "warn", "UDP sent; a remote host does not say whether anything listens", "watch the receiver's side")


def check_outputs(doc: Mapping[str, Any] | None, timeout: float) -> list[Check]:
    """Each declared output module's receiver."""
    if doc is None:
        return []
    checks = []
    for name, module in sorted((doc.get("modules") or {}).items()):
        kind, params = module.get("type"), module.get("params") or {}
        if kind == "scsynth":
            c = probe_scsynth(params.get("host", "127.0.0.1"), int(params.get("port", 57110)), timeout)
        elif kind in ("superdirt", "osc_out"):
            default = 57120
            c = probe_udp(kind, params.get("host", "127.0.0.1"), int(params.get("port", default)), timeout)
        elif kind == "midi_out":
            c = check_midi_port(params.get("port", ""))
        else:
            continue
        checks.append(Check(f"{name} ({c.name})", c.status, c.detail, c.fix))
    if not checks:
        checks.append(Check("outputs", "warn", "no output module is declared", "try vt.scsynth() or vt.superdirt()"))
    return checks


def check_midi() -> list[Check]:
    try:
        import mido
    except ImportError:
        return [Check("MIDI", "warn", "no MIDI library (mido)", "pip install 'vtkernel[midi]'")]
    try:
        names = mido.get_output_names()
        backend = getattr(mido.backend, "name", "?")
    except Exception as exc:
        return [Check("MIDI", "warn", f"no MIDI backend: {exc}", "pip install 'vtkernel[midi]' (python-rtmidi)")]
    if not names:
        return [Check("MIDI", "warn", f"backend {backend}, no output ports", "connect a device or create a virtual port (e.g. modprobe snd-virmidi)")]
    return [Check("MIDI", "ok", f"backend {backend}; outputs: {', '.join(names)}")]


def check_midi_port(port: str) -> Check:
    name = f"midi_out port {port or '(default)'}"
    try:
        import mido

        names = mido.get_output_names()
    except Exception as exc:
        return Check(name, "fail", f"no MIDI backend: {exc}", "pip install 'vtkernel[midi]'")
    if port and port not in names:
        return Check(name, "fail", f"no such port; outputs: {', '.join(names) or 'none'}", "set the module's port to one of them")
    if not names:
        return Check(name, "fail", "no MIDI output ports", "connect a device or create a virtual port")
    return Check(name, "ok", "present")


def check_priority(granted: str | None = None) -> list[Check]:
    """What the timing process gets. `granted`: what the running scheduler reported, if there is one."""
    source = "the scheduler has"
    if granted is None or granted == "unknown":
        source = "a scheduler would get"
        granted = _probe_priority()
    limits = _rt_limits()
    detail = f"{source} {granted} ({limits})"
    if granted.startswith(("SCHED_FIFO", "SCHED_RR", "time-constraint", "HIGH_PRIORITY")):
        return [Check("priority", "ok", detail)]
    return [Check("priority", "warn", detail + "; other programs can delay the clock", RT_HINT)]


def _probe_priority() -> str:
    """Run the scheduler's own priority request in a throwaway child and say what it got."""
    code = (
        "from vtkernel.engine.timing.guard import request_priority\n"
        "print(request_priority()[0])\n"
    )
    fallback = (
        "import os\n"
        "try:\n"
        "    os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10)); print('SCHED_FIFO 10')\n"
        "except (OSError, AttributeError):\n"
        "    print('normal (not permitted)')\n"
    )
    for src in (code, fallback):
        try:
            out = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip().splitlines()[-1]
    return "unknown"


def _rt_limits() -> str:
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_RTPRIO)
        top = os.sched_get_priority_max(os.SCHED_FIFO)
        shown = "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
        return f"RLIMIT_RTPRIO {shown}, SCHED_FIFO max {top}, uid {os.getuid()}"
    except (ImportError, AttributeError, OSError):
        return "no POSIX real-time limits here"


def check_session_dir(path: str | os.PathLike[str] | None) -> list[Check]:
    folder = Path(path) if path is not None else Path.cwd()
    name = f"session directory {folder}"
    if not folder.is_dir():
        return [Check(name, "fail", "does not exist", f"mkdir -p {folder}")]
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".vt-doctor-", delete=True) as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        return [Check(name, "fail", f"not writable: {exc.strerror or exc}", "choose another folder (VTKERNEL_SESSION_DIR) or fix its permissions")]
    free_mb = shutil.disk_usage(folder).free >> 20
    if free_mb < FREE_FAIL_MB:
        return [Check(name, "fail", f"writable, {free_mb} MB free", "free some space: autosave needs room for a few copies")]
    if free_mb < FREE_WARN_MB:
        return [Check(name, "warn", f"writable, only {free_mb} MB free", "free some space before a long show")]
    return [Check(name, "ok", f"writable, {free_mb / 1024:.1f} GB free")]


def check_scsynth_install() -> list[Check]:
    from vtkernel.testing.scsynth import unavailable

    why = unavailable()
    if why is None:
        return [Check("SuperCollider", "ok", f"scsynth {shutil.which('scsynth')}, jackd {shutil.which('jackd')}")]
    return [Check("SuperCollider", "warn", why.split(";")[0], why.split("; ", 1)[-1])]


# ----- entry points --------------------------------------------------------------------


def run_checks(
    doc: Mapping[str, Any] | None = None,
    *,
    session_dir: str | os.PathLike[str] | None = None,
    priority: str | None = None,
    timeout: float = 0.5,
) -> list[Check]:
    """Every check, in the order a performer reads them."""
    checks: list[Check] = []
    checks += check_kernelspec()
    checks += check_versions()
    checks += check_outputs(doc, timeout)
    checks += check_midi()
    checks += check_scsynth_install()
    checks += check_priority(priority)
    checks += check_session_dir(session_dir)
    return checks


def for_kernel(engine: Any, sessions: Any, runtime: Any) -> str:
    """`%vt doctor` in a running kernel: its document, its scheduler's priority, its session's folder."""
    from vtkernel.session.manager import default_session_path

    doc = engine.snapshot.doc.to_json()
    path = sessions.status().path or default_session_path()
    folder = path.parent if path is not None else None
    priority = runtime.stats().get("priority")
    return report(run_checks(doc, session_dir=folder, priority=str(priority) if priority else None))


def main(argv: list[str] | None = None) -> int:
    """`python -m vtkernel doctor [SESSION_FILE] [--scsynth HOST:PORT ...]`; exit 1 if a check failed."""
    parser = argparse.ArgumentParser(prog="python -m vtkernel doctor", description=__doc__.splitlines()[0])
    parser.add_argument("session", nargs="?", help="a session file: check the outputs it declares, and its folder")
    parser.add_argument("--scsynth", action="append", default=[], metavar="HOST:PORT", help="also probe this scsynth")
    parser.add_argument("--osc", action="append", default=[], metavar="HOST:PORT", help="also probe this OSC receiver")
    parser.add_argument("--timeout", type=float, default=0.5, help="seconds to wait for a receiver (default 0.5)")
    args = parser.parse_args(argv)
    doc: dict[str, Any] | None = None
    folder: Path | None = None
    if args.session:
        try:
            data = json.loads(Path(args.session).read_text())
            doc = data.get("document") if isinstance(data, dict) else None
        except (OSError, ValueError) as exc:
            print(f"cannot read {args.session}: {exc}", file=sys.stderr)
            return 2
        folder = Path(args.session).resolve().parent
    else:
        from vtkernel.session.manager import default_session_path

        path = default_session_path()
        folder = path.parent if path is not None else None
    modules: dict[str, Any] = dict((doc or {}).get("modules") or {})
    for i, where in enumerate(args.scsynth):
        host, port = _host_port(where)
        modules[f"cli_scsynth{i}"] = {"type": "scsynth", "params": {"host": host, "port": port}}
    for i, where in enumerate(args.osc):
        host, port = _host_port(where)
        modules[f"cli_osc{i}"] = {"type": "osc_out", "params": {"host": host, "port": port}}
    doc = {**(doc or {}), "modules": modules} if modules or doc is not None else None
    checks = run_checks(doc, session_dir=folder, timeout=args.timeout)
    print(report(checks))
    return 1 if any(c.status == "fail" for c in checks) else 0


# ----- helpers ----------------------------------------------------------------------------


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host or "127.0.0.1"), int(port)


def _loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


class _udp:
    """A connected UDP socket (connected, so a refusal surfaces as ECONNREFUSED)."""

    def __init__(self, host: str, port: int) -> None:
        info = socket.getaddrinfo("127.0.0.1" if host == "localhost" else host, port, type=socket.SOCK_DGRAM)[0]
        self.sock = socket.socket(info[0], socket.SOCK_DGRAM)
        self.sock.connect(info[4])

    def __enter__(self) -> socket.socket:
        return self.sock

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def _parse(data: bytes) -> tuple[str, tuple[Any, ...]] | None:
    try:
        from pythonosc.osc_message import OscMessage

        msg = OscMessage(data)
        return msg.address, tuple(msg.params)
    except Exception:
        return None
