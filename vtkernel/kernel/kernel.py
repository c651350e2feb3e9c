"""`VTKernel`: a thin ipykernel subclass that wires the engine, the hub and the shells.

It owns nothing clever itself: the engine lives in `vtkernel.engine`, the
comm protocol in `hub.py`, subshell glue in `subshell.py`, magics in
`magics.py`, sessions in `vtkernel.session`, live files in `vtkernel.live`.

Threads (see docs/architecture.md): the main thread runs cells and watched
files; the engine thread applies commands; the hub runs on an ipykernel
subshell thread; saver, watchdog and the scheduler process are owned by
their packages.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ipykernel.ipkernel import IPythonKernel
from traitlets import Float

from vtkernel import __version__
from vtkernel.kernel import subshell
from vtkernel.limits import COMM_TARGET

if TYPE_CHECKING:  # imported by `boot`, after the first kernel_info reply
    from vtkernel.kernel.hub import Hub
    from vtkernel.protocol import VTError

log = logging.getLogger("vtkernel")

# With no kernel_info request (a headless kernel nobody talks to yet), the engine starts after this.
BOOT_FALLBACK_SECONDS = 0.5


def _pattern_picture(pattern: Any, kind: str) -> str | None:
    """A pattern's pianoroll for the display formatter; None (plain text instead) if it cannot be queried."""
    from vtkernel.pictures import pianoroll

    try:
        pic = pianoroll(pattern, cycles=4)
    except Exception:  # a pattern that fails to query still prints as text
        log.debug("vtkernel: no pianoroll for %r", pattern, exc_info=True)
        return None
    return pic._repr_html_() if kind == "html" else pic._repr_svg_()


class VTKernel(subshell.HubShellRouting, IPythonKernel):  # type: ignore[misc]
    """The kernel: wires engine, runtime, hub, services and magics.

    ipykernel's private shell steps (`shell_channel_thread_main`,
    `shell_main`) are overridden by `subshell.HubShellRouting`, not here.

    Thread ownership: `__init__`, `boot`, `do_execute`, `_run_main_jobs` and
    `run_main_jobs_now` run on the main thread (`boot` once, after the first
    kernel_info reply: see its docstring); `schedule_main` and
    `on_hub` may be called from any thread; `_refuse_comm_msg` runs on
    ipykernel's shell-channel thread; comm handlers hand their work
    to the hub loop with `on_hub`. `_executing` is written by the main
    thread only and read (racily, harmlessly) by report callbacks.
    """

    # GIL hand-off interval while a cell burns CPU. 1 ms took the comm ack p50
    # during a CPU-bound cell from ~52 ms to ~19 ms at no measurable cost to
    # the cell's own throughput (docs/benchmarks.md). 0 keeps Python's default.
    switch_interval = Float(0.001, help="sys.setswitchinterval for the kernel process; 0 leaves the default").tag(config=True)
    lookahead = Float(0.05, help="seconds each event is sent ahead of its time (OSC timetags keep it exact)").tag(config=True)
    # A module plugin runs its own code as it imports: one that hangs must not hold the boot,
    # and with it the first cell, for ever.
    plugin_wait = Float(
        10.0, help="seconds the boot waits for module plugins to import; one still importing is left out, said, and registered when it returns"
    ).tag(config=True)

    implementation = "vtkernel"
    implementation_version = __version__
    banner = f"vtkernel {__version__}: a live-coded engine in Jupyter. Try `%vt help` and `vt.panel()`."

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _log_to_kernel_log()
        if self.switch_interval > 0:
            sys.setswitchinterval(self.switch_interval)
        # `boot` has begun (see `start`). Written by the main thread (`boot`), and by the control
        # thread in a shutdown before any boot; read racily by `_open_client` on the hub subshell,
        # where a stale False only schedules a `boot` that then does nothing.
        self._booted = False
        # The boot's imports and module plugins, loading on their own thread (`boot_soon`) while
        # the main shell keeps answering kernel_info; None until started. Guarded by its lock.
        self._preload: concurrent.futures.Future[Any] | None = None
        self._preload_lock = threading.Lock()
        self._boot_error: str | None = None
        # What the module plugins said before `services` could say it (`_plugin_report`); None after.
        self._plugin_lines: list[tuple[str, bool]] | None = []
        self._plugin_lock = threading.Lock()
        self.hub: Hub | None = None
        self.hub_subshell_id: str | None = None
        self._hub_loop: asyncio.AbstractEventLoop | None = None
        self._hub_thread: threading.Thread | None = None
        # Hub work asked for before the boot made the hub (`on_hub`); None once it ran.
        self._hub_queue: list[Callable[[], Any]] | None = []
        self._hub_queue_lock = threading.Lock()
        self._hub_flushed = False  # the hub loop has run the queued work (then `on_hub` may call directly)
        self._comm_senders: dict[str, _CommSender] = {}  # comm_id -> its sender (read on the shell-channel thread)
        self._main_jobs: deque[Callable[[], None]] = deque()
        self._main_job_ready = threading.Event()
        self._executing = False

    def start(self) -> None:
        super().start()
        # The hub's subshell and our comm target exist from the start, so a comm_open is routed
        # to the subshell as always (with the messages sent right behind it); the hub itself is
        # made by `boot`, and hub work asked for before that (`on_hub`) runs after it, in order.
        subshell_id: str | None = None
        try:
            subshell_id, loop, thread = subshell.create_hub_subshell(self)
        except Exception as exc:  # no subshells: the hub gets a plain thread (comms then wait for cells)
            log.warning("vtkernel: no hub subshell (%s); comms are served between cells", exc)
            loop, thread = _start_loop_thread()
        self._hub_loop, self._hub_thread = loop, thread
        self.comm_manager.register_target(COMM_TARGET, self._open_client)
        self.hub_subshell_id = subshell_id
        # The engine and the rest start behind the first kernel_info reply (`boot_soon`), or
        # before any other main-shell message (`boot`), or at a comm_open, or after BOOT_FALLBACK_SECONDS.
        self.io_loop.call_later(BOOT_FALLBACK_SECONDS, self.boot_soon)

    def boot_soon(self) -> None:
        """Any thread: start the boot's imports on their own thread; `boot` runs on the main loop when they are done.

        Until then the main shell keeps answering: a frontend that sent a
        second kernel_info while waiting for the first (jupyter_client's
        `wait_for_ready` does, after a second) gets it at once, not after
        the imports, which take most of the boot.
        """
        if self._booted:
            return
        with self._preload_lock:
            if self._preload is not None:
                return
            self._preload = concurrent.futures.Future()
        args = (self._preload, self.plugin_wait, self._plugin_report)
        threading.Thread(target=_preload, args=args, name="vtkernel-boot-imports", daemon=True).start()
        self._preload.add_done_callback(lambda _: self.io_loop.add_callback(self.boot))

    def boot(self) -> None:
        """Main thread, once: start the engine, the runtime, the services, `vt`, the magics and the hub.

        Called by `HubShellRouting.shell_main` before any message but
        kernel_info is handled (waiting for `boot_soon`'s imports if they
        are under way), and on the main loop when those imports are done.
        Until then the kernel has imported only ipykernel and the shell glue,
        which is what lets it answer as fast as stock ipykernel. A boot that
        fails is logged with its traceback; each cell then says so in one
        line, and plain Python still runs.
        """
        if self._booted:
            return
        self._booted = True
        with self._preload_lock:
            if self._preload is None:  # nothing started the imports: make them here, on this thread
                self._preload = concurrent.futures.Future()
                _preload(self._preload, self.plugin_wait, self._plugin_report)
        try:
            registry, problems = self._preload.result()
            for problem in problems:
                self._plugin_report(problem, True)
            self._boot(registry)
        except Exception as exc:
            log.exception("vtkernel: the engine could not start")
            with self._plugin_lock:  # no services to say them: the log is where they go
                kept = list(self._plugin_lines or ())
            for line, _ in kept:
                log.warning(line)
            self._boot_error = f"vtkernel could not start its engine ({type(exc).__name__}: {exc}); see the kernel log"

    def _boot(self, registry: Any) -> None:
        from vtkernel.api import VT
        from vtkernel.engine import Engine
        from vtkernel.kernel import prespawn  # the scheduler process `python -m vtkernel` started first thing
        from vtkernel.kernel.magics import VTMagics
        from vtkernel.kernel.services import KernelServices
        from vtkernel.runtime import Runtime

        self.engine = Engine(registry).start()
        # The clock and outputs run in a child process: a C call that holds this process's
        # GIL for a second must not make events late. A second one waits warm, so a restart
        # (a crash, a stuck module, %vt restart) loses a lookahead of music, not half a second.
        self.runtime = Runtime(
            self.engine, lookahead=self.lookahead, on_report=self._runtime_report, adopt=prespawn.take(), spare=True
        )
        self.runtime.start(wait=False)  # spawns the scheduler process on its own thread: warm by the first play
        self.services = KernelServices(self)
        with self._plugin_lock:
            said, self._plugin_lines = self._plugin_lines or [], None
        for line, error in said:
            self.services.reports.say("plugin", line, error=error)
        self.vt = VT(self.engine, origin="cell", services=self.services.fns)
        user_ns = self.shell.user_ns
        if "vt" not in user_ns:  # merged in, never clobbering a user's own `vt`
            user_ns["vt"] = self.vt
        self.shell.register_magics(VTMagics(self.shell, self))
        self._register_pictures()
        self._start_hub()

    def _register_pictures(self) -> None:
        """Snapshots display as an SVG of the patch graph (users would rather look than read).

        Inline HTML first, so the drawing takes the theme's text colour (see `vtkernel.pictures.svg`).
        """
        from vtkernel.engine.document import Snapshot
        from vtkernel.pictures import Picture, patch_svg

        formatters = self.shell.display_formatter.formatters
        picture = lambda snap: Picture(patch_svg(snap, self.engine.registry))  # noqa: E731
        formatters["text/html"].for_type(Snapshot, lambda snap: picture(snap)._repr_html_())
        formatters["image/svg+xml"].for_type(Snapshot, lambda snap: picture(snap)._repr_svg_())
        # A pattern shows its pianoroll (4 cycles), as Strudel's editor can; its repr stays the text.
        pattern_class = "vtkernel.engine.patterns.core.Pattern"
        formatters["text/html"].for_type_by_name(*pattern_class.rsplit(".", 1), lambda p: _pattern_picture(p, "html"))
        formatters["image/svg+xml"].for_type_by_name(*pattern_class.rsplit(".", 1), lambda p: _pattern_picture(p, "svg"))

    def _plugin_report(self, line: str, error: bool) -> None:
        """Any thread: a module plugin that failed, is still importing, or came late; said like any report.

        Until the boot has made the services, lines are kept, and said right after, in order.
        """
        with self._plugin_lock:
            if self._plugin_lines is not None:
                self._plugin_lines.append((line, error))
                return
        self.services.reports.say("plugin", line, error=error)

    def _runtime_report(self, line: str) -> None:
        """Reader thread of the runtime: a problem with outputs, said once."""
        self.services.reports.say("timing", line, error=True)

    # ----- start-up: the hub on its own subshell ---------------------------------

    def _start_hub(self) -> None:
        """Boot, main thread: make the hub on its loop, then run the hub work queued until now, in order."""
        from vtkernel.kernel.hub import Hub

        loop = self._hub_loop
        assert loop is not None
        ready: concurrent.futures.Future[Hub] = concurrent.futures.Future()

        def make_hub() -> None:
            ready.set_result(
                Hub(
                    self.engine,
                    loop,
                    actions=self.services.action_from_hub,
                    run_script=self.services.run_script_from_hub,
                    script_text=self.services.script_for,
                    telemetry=self.services.telemetry,
                )
            )

        def flushed() -> None:
            self._hub_flushed = True

        loop.call_soon_threadsafe(make_hub)
        self.hub = ready.result(10)
        with self._hub_queue_lock:
            for fn in self._hub_queue or ():
                loop.call_soon_threadsafe(fn)
            loop.call_soon_threadsafe(flushed)
            self._hub_queue = None

    def _refuse_comm_msg(self, comm_id: str | None, msg_id: Any, why: str) -> None:
        """Shell-channel thread: a comm message refused unread gets `bad_message` on its comm."""
        sender = self._comm_senders.get(comm_id) if comm_id is not None else None
        if sender is None:
            log.warning("refused a comm message unread (%s); no client to tell", why)
            return
        from vtkernel.protocol import VTError

        exc = VTError("bad_message", f"message refused unread: {why}")
        self.on_hub(lambda: self.hub and sender.client and self.hub.refuse(sender.client, msg_id, exc))

    def on_hub(self, fn: Callable[[], Any]) -> None:
        """Any thread: run `fn` on the hub loop, in order (directly if on it and nothing waits before it).

        Until the boot has made the hub, calls are kept, and run right after it in the order made.
        """
        if self._hub_queue is not None:  # only before the boot's flush; None for good after it
            with self._hub_queue_lock:
                if self._hub_queue is not None:
                    self._hub_queue.append(fn)
                    return
        if self._hub_flushed and threading.current_thread() is self._hub_thread:
            fn()
        else:
            assert self._hub_loop is not None
            self._hub_loop.call_soon_threadsafe(fn)

    def _open_client(self, comm: Any, open_msg: dict[str, Any]) -> None:
        """Comm target `vtkernel.state`: subscribe the new comm to the hub (booting first if need be)."""
        if not self._booted:  # a comm_open on the subshell before anything reached the main shell
            self.boot_soon()
        if self.hub_subshell_id is not None:
            subshell.pin_to_subshell(comm, self.hub_subshell_id)
        data = open_msg.get("content", {}).get("data", {})
        sender = _CommSender(comm)
        self._comm_senders[comm.comm_id] = sender

        from vtkernel.protocol import VTError, error_msg

        def register() -> None:
            assert self.hub is not None
            try:
                sender.client = self.hub.add_client(sender, data)
            except VTError as exc:  # a bad hello: say why, subscribe nothing, close the comm
                sender.send(error_msg(None, exc.code, exc.message))
                self._comm_senders.pop(comm.comm_id, None)
                comm.close()

        self.on_hub(register)

        def on_msg(msg: dict[str, Any]) -> None:
            payload = msg.get("content", {}).get("data")
            self.on_hub(lambda: self._deliver(sender, payload))

        def on_close(msg: dict[str, Any]) -> None:
            self._comm_senders.pop(comm.comm_id, None)
            self.on_hub(lambda: self.hub and sender.client and self.hub.remove_client(sender.client))

        comm.on_msg(on_msg)
        comm.on_close(on_close)

    def _deliver(self, sender: _CommSender, payload: Any) -> None:
        if self.hub is not None and sender.client is not None:
            self.hub.handle(sender.client, payload)

    # ----- cells: read-your-writes and live-file work between cells ---------------

    async def do_execute(self, code: str, silent: bool, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self._boot_error is not None:
            print(self._boot_error, file=sys.stderr)
            return await super().do_execute(code, silent, *args, **kwargs)
        from vtkernel.protocol import VTError

        self._executing = True
        if not silent:
            self.services.reports.show_unseen()
        try:
            reply = await super().do_execute(code, silent, *args, **kwargs)
        finally:
            self._executing = False
        try:
            self.vt.flush()  # read-your-writes: everything the cell queued is applied
        except VTError as exc:
            reply = self._fail_cell(reply, exc)
        if self._main_jobs:
            self.io_loop.add_callback(self._run_main_jobs)
        return reply

    def _fail_cell(self, reply: dict[str, Any], exc: VTError) -> dict[str, Any]:
        """Report an engine error that surfaced only at the end of the cell, and fail the cell."""
        if reply.get("status") == "error":
            return reply
        self.shell.showtraceback((type(exc), exc, None))
        return {
            "status": "error",
            "execution_count": reply.get("execution_count"),
            "ename": "VTError",
            "evalue": str(exc),
            "traceback": exc._render_traceback_(),
        }

    def schedule_main(self, fn: Callable[[], None]) -> None:
        """Any thread: run `fn` on the main thread when no cell is running, in order."""
        self._main_jobs.append(fn)
        self._main_job_ready.set()
        self.io_loop.add_callback(self._run_main_jobs)

    def run_main_jobs_now(self, timeout: float) -> int:
        """Main thread, from a cell that asked (`vt.sync()`): wait for pending jobs, run them here."""
        if not self._main_jobs:
            self._main_job_ready.clear()
            if not self._main_jobs:
                self._main_job_ready.wait(timeout)
        ran = 0
        while self._main_jobs:
            self._main_jobs.popleft()()
            ran += 1
        self._main_job_ready.clear()
        return ran

    def _run_main_jobs(self) -> None:
        from vtkernel.protocol import VTError

        while self._main_jobs and not self._executing:
            job = self._main_jobs.popleft()
            # Outside an execute request ipykernel ignores SIGINT, so a watched file stuck in
            # `while True: pass` could not be stopped and held every cell behind it. The
            # frontend's interrupt (SIGINT, or interrupt_request, which sends one) now raises
            # KeyboardInterrupt in the job, as in a cell; the file's run reports it and applies nothing.
            try:
                with _interruptible():
                    job()
            except KeyboardInterrupt:
                log.warning("vtkernel: a background job was interrupted")
            except Exception:
                log.exception("vtkernel: a background job failed")
            try:
                self.vt.flush()
            except VTError as exc:
                log.warning("vtkernel: %s", exc)

    # ----- shutdown -----------------------------------------------------------------

    def do_shutdown(self, restart: bool) -> dict[str, Any]:
        if not self._booted:  # shut down before anyone asked anything: only the early scheduler process exists
            self._booted = True  # and the fallback timer must not boot now
            from vtkernel.kernel import prespawn

            spawned = prespawn.take()
            if spawned is not None:
                spawned.discard()
            return super().do_shutdown(restart)
        if hasattr(self, "services"):  # each part is absent if the boot failed before it
            self.services.close()
        if hasattr(self, "runtime"):
            self.runtime.stop()
        if self.hub is not None and self._hub_loop is not None:
            self._hub_loop.call_soon_threadsafe(self.hub.close)
        if hasattr(self, "engine"):
            self.engine.stop()
        return super().do_shutdown(restart)


# What `boot` imports: the engine and its document, pydantic's protocol, the runtime, the
# services (sessions, live files), the magics, the hub and the pictures.
BOOT_IMPORTS = (
    "vtkernel.api",
    "vtkernel.engine",
    "vtkernel.engine.document",
    "vtkernel.protocol",
    "vtkernel.runtime",
    "vtkernel.kernel.services",
    "vtkernel.kernel.magics",
    "vtkernel.kernel.hub",
    "vtkernel.pictures",
)


def _preload(done: concurrent.futures.Future[Any], plugin_wait: float, late: Callable[[str, bool], None]) -> None:
    """The boot's imports and its module registry, with the plugins' problems: `done`'s result, or its exception.

    Plugins get `plugin_wait` seconds; what becomes of one still importing then goes to `late`.
    """
    import importlib

    try:
        for name in BOOT_IMPORTS:
            importlib.import_module(name)
        from vtkernel.engine import default_registry

        registry = default_registry()
        done.set_result((registry, registry.load_entry_points(wait=plugin_wait, late=late)))
    except BaseException as exc:  # the boot reports it, on the main thread
        done.set_exception(exc)


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt while the block runs (main thread), as during a cell."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, saved)


class _CommSender:
    """Adapts a comm to the hub's `Sender`. Sends happen on the hub thread."""

    def __init__(self, comm: Any) -> None:
        self.comm = comm
        self.client: Any = None

    def send(self, msg: dict[str, Any]) -> None:
        self.comm.send(msg)


def _log_to_kernel_log() -> None:
    """`vtkernel.*` loggers write to the kernel's own stderr (its log), never into a cell.

    Without a handler, logging falls back to `sys.stderr` at call time: in a
    kernel that is the stream of whatever cell ran last. Even fd 2 is captured
    and forwarded to iopub; `sys.stderr.fileno()` is ipykernel's copy of the
    original stderr, which is not.
    """
    vt_log = logging.getLogger("vtkernel")
    if any(getattr(h, "_vt_kernel_log", False) for h in vt_log.handlers):
        return
    try:
        stream: Any = open(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
    except (OSError, ValueError, AttributeError):  # no fd behind sys.stderr
        stream = sys.__stderr__
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("[vtkernel] %(levelname)s | %(name)s: %(message)s"))
    handler._vt_kernel_log = True  # type: ignore[attr-defined]
    vt_log.addHandler(handler)
    vt_log.propagate = False


def _start_loop_thread() -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="vt-hub", daemon=True)
    thread.start()
    return loop, thread
