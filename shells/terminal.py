"""The terminal shell: `python -m vtkernel shell --existing [CONNECTION_FILE]` (SPEC §4).

A protocol-v1 client over jupyter_client, like `jupyter console --existing`:

- opens a comm on `vtkernel.state` and resends `resync` until the first
  snapshot arrives (iopub is a subscription and misses its first messages);
- keeps a `Mirror` of the document (deltas applied by base/version, resync on
  a gap) for completion and for describing changes;
- sends each command line as a `text` message with an id, prints one line per
  ack or error, and one line per change made elsewhere
  (`v42 lfo1.rate = 3.0 (editor)`). Its own changes are recognised by the
  ids of its own commands, never by origin: a coalesced delta carries one
  origin for changes from several shells;
- interactive (a TTY): prompt_toolkit with history in a file and completion;
  otherwise it reads lines from stdin and prints results, for scripts and
  tests. Ctrl-D (or end of input) closes the comm and exits.

Threads: the main thread reads input and sends on the shell channel; one
reader thread owns the iopub channel, the mirror and all printing of
kernel messages. `Pending` records are shared and guarded by one lock.
"""

from __future__ import annotations

import argparse
import os
import queue
import shlex
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from shells.mirror import Change, Mirror
from vtkernel.protocol import COMM_TARGET, PROTOCOL_VERSION
from vtkernel.verbs import SHELL_EXIT_WORDS, VERBS

HISTORY_ENV = "VTKERNEL_SHELL_HISTORY"
FIRST_SNAPSHOT_TIMEOUT = 20.0
RESYNC_EVERY = 0.25
ANSWER_TIMEOUT = 60.0
MAX_CHANGE_LINES = 12


def history_path() -> Path:
    env = os.environ.get(HISTORY_ENV)
    if env:
        return Path(env)
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "vtkernel" / "shell_history"


def touched_keys(line: str) -> set[str] | None:
    """What a command line may change, as `Change.key`s; `None` means it may change anything."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return set()
    if not words:
        return set()
    verb, args = words[0].lower(), words[1:]
    spec = VERBS.get(verb)
    if spec is None or not spec.edits:
        return set()
    if verb == "set" and args:
        return {args[0]}
    if verb in ("add", "rm") and args:
        return {args[0]}
    if verb in ("connect", "disconnect") and len(args) >= 2:
        return {f"connection {args[0]} {args[1]}"}
    if verb in ("bpm", "meter"):
        return {f"clock.{verb}"}
    if verb in ("play", "stop"):
        return {"clock.playing"}
    return None  # undo, redo, open, load: whatever they changed was ours


@dataclass
class Pending:
    """A command this shell sent and the version its ack named."""

    id: str
    keys: set[str] | None
    done: threading.Event = field(default_factory=threading.Event)
    version: int | None = None


@dataclass
class HeldDelta:
    base: int
    version: int
    origin: str
    changes: list[Change]


class KernelGone(Exception):
    pass


class TerminalShell:
    """One comm to the kernel's hub, the mirror, and the printing rules.

    Threads: `connect`, `run_line` and `close` run on the main thread; `receive` and all
    printing of kernel messages on the reader thread; `_own`/`_held` are guarded by `_lock`.
    """

    def __init__(self, client: Any, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.kc = client
        self._out = out  # None: whatever sys.stdout is when printing (patch_stdout's proxy at the prompt)
        self._err = err
        self.comm_id = uuid.uuid4().hex
        self.mirror = Mirror()
        self._ids = (f"t{n}" for n in range(1, 1 << 62))
        self._lock = threading.Lock()
        self._own: dict[str, Pending] = {}
        self._held: list[HeldDelta] = []
        self._have_snapshot = threading.Event()
        self._stop = threading.Event()
        self.gone = threading.Event()
        self.errors = 0
        self._reader = threading.Thread(target=self._read_loop, name="vt-shell-iopub", daemon=True)
        self._wake_prompt: Any = None  # set while a prompt is shown: call to end it

    @property
    def out(self) -> TextIO:
        return self._out or sys.stdout

    @property
    def err(self) -> TextIO:
        return self._err or sys.stderr

    # ----- connection ------------------------------------------------------------

    def connect(self, timeout: float = FIRST_SNAPSHOT_TIMEOUT) -> None:
        """Open the comm and wait for the first snapshot, resending `resync` (slow joiner)."""
        self._reader.start()
        hello = {"protocol": PROTOCOL_VERSION, "shell": "terminal", "telemetry": False}
        self._send_raw("comm_open", {"comm_id": self.comm_id, "target_name": COMM_TARGET, "data": hello})
        deadline = time.monotonic() + timeout
        warned = False
        while not self._have_snapshot.wait(RESYNC_EVERY):
            if self.gone.is_set():
                raise KernelGone("the kernel is not running")
            if time.monotonic() > deadline:
                raise KernelGone(f"no answer from the kernel in {timeout:.0f} s (is it a vtkernel kernel?)")
            if not warned and time.monotonic() > deadline - timeout + 3:
                print("waiting for the kernel...", file=self.err, flush=True)
                warned = True
            self.send({"type": "resync"})

    def close(self) -> None:
        if not self._stop.is_set():
            try:
                self._send_raw("comm_close", {"comm_id": self.comm_id, "data": {}})
            except Exception:
                pass
        self._stop.set()
        if self._reader.is_alive():
            self._reader.join(2)

    def _send_raw(self, msg_type: str, content: dict[str, Any]) -> None:
        msg = self.kc.session.msg(msg_type, content)
        self.kc.shell_channel.send(msg)

    def send(self, data: dict[str, Any]) -> None:
        self._send_raw("comm_msg", {"comm_id": self.comm_id, "data": data})

    # ----- commands --------------------------------------------------------------

    def run_line(self, line: str, timeout: float = ANSWER_TIMEOUT) -> bool:
        """Send one command line and wait for its ack or error (printed by the reader). True if answered."""
        if not line.strip() or line.lstrip().startswith("#"):
            return True
        pending = Pending(next(self._ids), touched_keys(line))
        with self._lock:
            self._own[pending.id] = pending
        self.send({"type": "text", "id": pending.id, "text": line.strip()})
        deadline = time.monotonic() + timeout
        while not pending.done.wait(0.2):
            if self.gone.is_set():
                raise KernelGone("the kernel is gone")
            if time.monotonic() > deadline:
                self._print(f"no answer yet from the kernel after {timeout:.0f} s; it will be printed when it comes")
                with self._lock:
                    pending.done.set()
                    self._release_held()
                return False
        return True

    # ----- incoming (reader thread) ------------------------------------------------

    def _read_loop(self) -> None:
        last_beat_check = time.monotonic()
        while not self._stop.is_set():
            try:
                msg = self.kc.get_iopub_msg(timeout=0.25)
            except queue.Empty:
                msg = None
            except Exception:
                if self._stop.is_set():
                    return
                msg = None
            if msg is not None:
                self._dispatch(msg)
            now = time.monotonic()
            if now - last_beat_check > 1.0:
                last_beat_check = now
                if not self._kernel_alive():
                    self._kernel_gone("the kernel stopped")
                    return

    def _kernel_alive(self) -> bool:
        try:
            return bool(self.kc.is_alive())
        except Exception:
            return True

    def _kernel_gone(self, why: str) -> None:
        if self.gone.is_set():
            return
        self.gone.set()
        self._print(f"error [kernel] {why}")
        wake = self._wake_prompt
        if wake is not None:
            wake()

    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("msg_type")
        content = msg.get("content") or {}
        if content.get("comm_id") != self.comm_id:
            if kind == "status" and content.get("execution_state") == "dead":
                self._kernel_gone("the kernel died")
            return
        if kind == "comm_close":
            self._kernel_gone("the kernel closed this shell's connection")
            return
        if kind != "comm_msg":
            return
        data = content.get("data")
        if isinstance(data, dict):
            try:
                self.receive(data)
            except Exception as exc:  # a bug here must not kill the reader
                self._print(f"error [shell] {type(exc).__name__}: {exc}")

    def receive(self, data: dict[str, Any]) -> None:
        """One protocol message from the kernel. Called on the reader thread."""
        kind = data.get("type")
        if kind == "snapshot":
            self.mirror.load(data)
            self._have_snapshot.set()
        elif kind == "schema":
            self.mirror.schema = data.get("types") or {}
        elif kind == "delta":
            if not self._have_snapshot.is_set():
                return
            changes = self.mirror.apply(data)
            if changes is None:
                self.send({"type": "resync"})
                return
            held = HeldDelta(data["base"], data["version"], data.get("origin") or "?", changes)
            with self._lock:
                if any(not p.done.is_set() for p in self._own.values()):
                    self._held.append(held)
                    return
            self._print_changes(held, [])
        elif kind == "ack":
            out = data.get("output")
            self._print(out if out is not None else f"ok v{data.get('version')}")
            self._answered(data.get("id"), data.get("version"))
        elif kind == "error":
            err = data.get("error") or {}
            self._print(f"error [{err.get('code')}] {err.get('message')}")
            self._answered(data.get("id"), None, failed=True)
        elif kind == "report":  # a watched file's error, an autosave failure, a muted module: said to every shell
            text = str(data.get("text") or "")
            prefix = f"{data.get('source', 'kernel')}: " if data.get("error") else ""
            self._print(prefix + text)

    def _answered(self, msg_id: Any, version: int | None, failed: bool = False) -> None:
        with self._lock:
            pending = self._own.get(msg_id)
            if pending is None:
                return
            if failed:
                self.errors += 1
            pending.version = version
            pending.done.set()
            self._release_held()

    def _release_held(self) -> None:
        """Print held deltas once every own command is answered, minus the changes those made.

        A change is ours when an own command's ack names a version in the
        delta's range (base, version] and the command could touch that key.
        Called with the lock held.
        """
        if any(not p.done.is_set() for p in self._own.values()):
            return
        own = [p for p in self._own.values() if p.version is not None]
        for held in self._held:
            mine = [p for p in own if held.base < p.version <= held.version]  # type: ignore[operator]
            self._print_changes(held, mine)
        self._held.clear()
        self._own.clear()

    def _print_changes(self, held: HeldDelta, mine: list[Pending]) -> None:
        def ours(change: Change) -> bool:
            return any(p.keys is None or change.key in p.keys for p in mine)

        shown = [c for c in held.changes if not ours(c)]
        for change in shown[:MAX_CHANGE_LINES]:
            self._print(f"v{held.version} {change.text} ({held.origin})")
        if len(shown) > MAX_CHANGE_LINES:
            self._print(f"v{held.version} ... and {len(shown) - MAX_CHANGE_LINES} more changes ({held.origin})")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


# --------------------------------------------------------------------------
# Input: interactive (prompt_toolkit) or lines from stdin
# --------------------------------------------------------------------------


def make_completer(mirror: Mirror) -> Any:
    from prompt_toolkit.completion import Completer, Completion

    class VTCompleter(Completer):  # type: ignore[misc]
        """Verbs, then module/param/port names from the mirror, as the verb expects."""

        def get_completions(self, document: Any, complete_event: Any) -> Any:
            text = document.text_before_cursor
            words = text.split()
            current = "" if (not words or text.endswith((" ", "\t"))) else words[-1]
            index = len(words) if current == "" else len(words) - 1
            if index == 0:
                options: list[str] = list(VERBS)
            else:
                options = arg_options(mirror, words[0].lower(), index, words, current)
            for option in sorted(set(options)):
                if option.startswith(current) and option != current:
                    yield Completion(option, start_position=-len(current))

    return VTCompleter()


def arg_options(mirror: Mirror, verb: str, index: int, words: list[str], current: str = "") -> list[str]:
    """What argument `index` (1-based) of `verb` may be, from the verb table's `args` and the mirror."""
    spec = VERBS.get(verb)
    if spec is None or not spec.args or index > spec.max_args:
        return []
    kind = spec.args[min(index, len(spec.args)) - 1]
    before = words[index - 1] if len(words) > index - 1 else ""  # the argument before this one
    if kind == "module":
        return list(mirror.modules())
    if kind == "param":
        return mirror.params()
    if kind == "value":
        return mirror.values_of(before)
    if kind == "output":
        return mirror.outputs()
    if kind == "input":
        return mirror.inputs()
    if kind == "source":
        return [s for s, _ in mirror.connections()]
    if kind == "target":
        return [d for s, d in mirror.connections() if s == before]
    if kind == "type":
        return sorted(mirror.schema)
    if kind == "onoff":
        return ["on", "off", "sync"] if verb == "link" else ["on", "off"]
    if kind == "assign":
        return mirror.assignments(words[2] if len(words) > 2 else "", current)
    if kind == "verb":
        return list(VERBS)
    return []


def banner(shell: TerminalShell, attached: str) -> str:
    n = len(shell.mirror.modules())
    return (
        f"vtkernel shell attached to {attached}: v{shell.mirror.version}, {n} module{'' if n == 1 else 's'}. "
        "Tab completes, `help` lists commands, `quit` or Ctrl-D leaves."
    )


def interactive(shell: TerminalShell, attached: str = "the kernel") -> int:
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.patch_stdout import patch_stdout

    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(path)),
        completer=make_completer(shell.mirror),
        complete_while_typing=False,
    )

    def wake() -> None:
        app = session.app
        if app.is_running and app.loop is not None:
            app.loop.call_soon_threadsafe(lambda: app.exit(exception=EOFError()) if app.is_running else None)

    shell._wake_prompt = wake
    # Inside patch_stdout every print (the reader thread's change lines too: `shell.out` is
    # read at print time) goes above the prompt, which is then drawn again.
    with patch_stdout(raw=True):
        print(banner(shell, attached), flush=True)
        while not shell.gone.is_set():
            try:
                line = session.prompt("vt> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if line.strip().lower() in SHELL_EXIT_WORDS:
                break
            try:
                shell.run_line(line)
            except KeyboardInterrupt:
                print("(not waiting for the answer; it will be printed when it comes)", flush=True)
    return 1 if shell.gone.is_set() else 0


def batch(shell: TerminalShell, lines: TextIO) -> int:
    for line in lines:
        if shell.gone.is_set():
            return 1
        if line.strip().lower() in SHELL_EXIT_WORDS:
            break
        shell.run_line(line.rstrip("\n"))
    return 1 if (shell.errors or shell.gone.is_set()) else 0


# --------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------


def most_recent_vtkernel(runtime_dir: str | None = None) -> str:
    """The connection file of the most recently started vtkernel kernel in the Jupyter runtime directory.

    A connection file names its kernel (`kernel_name`, written by jupyter_client and
    jupyter_server), so another notebook's ipykernel is never picked; a file that names
    none (an older launcher) is taken only if no file names vtkernel. A connection file
    is written when its kernel starts, so the newest one is the most recently started.
    """
    import glob
    import json

    from jupyter_core.paths import jupyter_runtime_dir

    folder = runtime_dir or jupyter_runtime_dir()
    named: list[tuple[float, str]] = []
    unnamed: list[tuple[float, str]] = []
    for path in glob.glob(os.path.join(folder, "kernel-*.json")):
        try:
            with open(path, encoding="utf-8") as f:
                info = json.load(f)
            when = os.stat(path).st_mtime
        except (OSError, ValueError):
            continue
        name = info.get("kernel_name") if isinstance(info, dict) else None
        if name == "vtkernel":
            named.append((when, path))
        elif not name:
            unnamed.append((when, path))
    found = max(named or unnamed, default=None)
    if found is None:
        raise OSError(f"no vtkernel kernel in {folder}")
    return found[1]


def describe_connection(path: str) -> str:
    """`kernel-1234.json (vtkernel)`: which kernel a shell attached to, as its banner says."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            name = json.load(f).get("kernel_name") or "kernel"
    except (OSError, ValueError, AttributeError):
        name = "kernel"
    return f"{os.path.basename(path)} ({name})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vtkernel shell",
        description="Attach a command shell to a running vtkernel kernel.",
    )
    parser.add_argument(
        "--existing",
        nargs="?",
        const="",
        default="",
        metavar="CONNECTION_FILE",
        help="connection file (a path, a kernel id, or a glob); default: the most recently started vtkernel kernel",
    )
    args = parser.parse_args(argv)

    from jupyter_client import BlockingKernelClient, find_connection_file

    try:
        path = find_connection_file(args.existing) if args.existing else most_recent_vtkernel()
    except OSError as exc:
        print(
            f"error: no kernel connection file found ({exc}); start a vtkernel kernel or pass --existing FILE",
            file=sys.stderr,
        )
        return 2
    kc = BlockingKernelClient(connection_file=path)
    kc.load_connection_file()
    kc.start_channels(shell=True, iopub=True, stdin=False, hb=True, control=False)
    shell = TerminalShell(kc)
    try:
        try:
            shell.connect()
        except KernelGone as exc:
            print(f"error: {exc} ({path})", file=sys.stderr)
            return 1
        if sys.stdin.isatty() and sys.stdout.isatty():
            return interactive(shell, describe_connection(path))
        return batch(shell, sys.stdin)
    except KernelGone as exc:
        print(f"error [kernel] {exc}", file=sys.stderr)
        return 1
    finally:
        shell.close()
        kc.stop_channels()
