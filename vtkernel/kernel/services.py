"""`KernelServices`: the kernel-level verbs and the services they call.

The engine's own commands go through `vt`; these are the verbs of the
command language (`vtkernel.verbs`) that need more than the engine:
sessions (`open`, `save`, `load`, `close`), watched files (`watch`,
`unwatch`, `sync`), the code shell's EDIT mode (`run_script`), pictures
(`graph`, `timeline`), the timing process (`lookahead`, `restart`,
`recorded`) and telemetry and statistics (`stats`, `doctor`). Reports of
files, sessions and the timing process go through one router
(`vtkernel.kernel.reports.Reports`). The kernel file only wires this in.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vtkernel.api import VT
from vtkernel.engine.document import Snapshot
from vtkernel.kernel.panel import make_panel
from vtkernel.kernel.reports import Reports
from vtkernel.language import ShellAction
from vtkernel.protocol import VTError
from vtkernel.verbs import VERBS

if TYPE_CHECKING:
    from vtkernel.kernel.kernel import VTKernel


class KernelServices:
    """Kernel-level verbs (`open`, `save`, `watch`, `script`, `stats`, `panel`, ...).

    Owner: the kernel's main thread builds it and runs the verbs a cell
    calls (`fns`, through `vt`). `action_from_hub` and `run_script_from_hub`
    are called on the hub thread and hand the work to the verb's thread
    (`Verb.thread`: inline on the hub, the main thread, or the one verb
    worker `vt-verbs`, which runs them in order), returning a Future the hub
    awaits. `stats` reads `Hub.stats` from whichever of these threads asks
    (a dict the hub thread writes; read racily, harmlessly, for display).
    Report callbacks may come from any thread (see `Reports`).
    """

    def __init__(self, kernel: VTKernel) -> None:
        from vtkernel.live.watcher import LiveFiles

        self.kernel = kernel
        self.engine = kernel.engine
        # One named thread for the verbs that may block (file I/O, restarts), in order:
        # a thread per verb would let two `save`s or a `save` and an `open` interleave.
        self._worker = _Worker("vt-verbs")
        # Every report (files, sessions, the timing process): the cell, the next cell, the clients, the log.
        self.reports = Reports(executing=lambda: kernel._executing, broadcast=self._broadcast_report)
        self.live = LiveFiles(
            self.engine,
            make_vt=lambda path: VT(self.engine, origin=f"file:{os.path.basename(path)}"),
            schedule_main=kernel.schedule_main,
            report=self._live_report,
        )
        self.fns: dict[str, Callable[..., Any]] = {
            "script": lambda: self.script_for(self.engine.snapshot),
            "stats": self.stats,  # a dict: vt.stats() returns it, `%vt stats` formats it
            "doctor": lambda: __import__("vtkernel.doctor").doctor.for_kernel(
                self.engine, self.sessions, kernel.runtime
            ),
            "watch": self.watch,
            "unwatch": self.unwatch,
            "recorded": lambda name: kernel.runtime.recorded(name),
            "timeline": self.timeline,
            "graph": self.graph,
            "reports": lambda: [text for text, _ in self.reports.history("timing")],
            "lookahead": self.set_lookahead,
            "restart": lambda: kernel.runtime.restart(),  # the scheduler process; keeps the transport's beat
            "panel": lambda: make_panel(kernel),
            "registered": lambda cls: kernel.hub is not None and kernel.on_hub(kernel.hub.broadcast_schema),
        }
        from vtkernel.session import SessionManager

        # Resumes VTKERNEL_SESSION / VTKERNEL_SESSION_DIR if set ("default resume mode").
        self.sessions = SessionManager.from_env(self.engine, report=self._session_report)
        self.fns.update(
            {
                "open": self.sessions.open,
                "save": self.sessions.save,
                "load": self.sessions.load,
                "close": self.sessions.close,
                "session": lambda: str(self.sessions.status()),
                "sync": self.sync,
            }
        )

    # ----- live files -------------------------------------------------------------

    def watch(self, path: str) -> str:
        """Main thread, inside the cell that asked: run the file, then show its later reports here."""
        real = os.path.realpath(path)
        message = self.live.watch(path)
        self.reports.set_area(real, _live_output_area())
        return message

    def unwatch(self, path: str) -> str:
        message = self.live.unwatch(path)
        self.reports.forget_area(os.path.realpath(path))
        return message

    def _live_report(self, text: str, is_error: bool, path: str) -> None:
        """Main thread: a watched file's run (see `Reports`: the cell, the watch cell, the next cell, the clients)."""
        self.reports.say("file", text, error=is_error, path=path)

    def _session_report(self, line: str) -> None:
        """Any thread (the saver's too): a session event worth telling the user, in one line."""
        self.reports.say("session", line)

    @property
    def session_reports(self) -> list[str]:
        return [text for text, _ in self.reports.history("session")]

    @property
    def runtime_reports(self) -> list[str]:
        return [text for text, _ in self.reports.history("timing")]

    def _broadcast_report(self, msg: dict[str, Any]) -> None:
        """Any thread: send a `report` message to every protocol client, on the hub's loop."""
        hub = self.kernel.hub
        if hub is not None:
            self.kernel.on_hub(lambda: hub.broadcast(msg))

    def sync(self, timeout: float = 2.0) -> str:
        """From a cell: wait (up to `timeout`) for pending file saves and apply them now.

        Watched files normally apply between cells; a cell that edits a file
        itself (a notebook, a test) calls `vt.sync()` to see the result.
        """
        before = self.reports.counts["file"]
        ran = self.kernel.run_main_jobs_now(timeout)
        if not ran:
            return "no pending file changes"
        applied = self.reports.counts["file"] - before
        return f"applied {applied} pending save{'s' if applied != 1 else ''}" if applied else "no pending file changes"

    # ----- the code shell ------------------------------------------------------------

    def run_script_from_hub(self, text: str, origin: str) -> concurrent.futures.Future[Any]:
        """The code shell's EDIT mode: apply an edited script incrementally, on the main thread."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(self.run_script(text, origin))
            except BaseException as exc:
                fut.set_exception(exc)

        self.kernel.schedule_main(run)
        return fut

    def run_script(self, text: str, origin: str = "code") -> str:
        """Apply an edited canonical script: what it changes, adds and no longer declares.

        The script shown in the code shell declares the whole document, so the
        edit is applied relative to the current document: a throwaway live
        file first runs the current canonical script (a no-op that claims
        every module), then the edited text, incrementally. Lines the user
        deleted remove their modules; unchanged lines do not run again.
        """
        from vtkernel.live.runner import LiveFile

        live = LiveFile("<code shell>", VT(self.engine, origin=origin))
        try:
            baseline = live.run(self.script_for(self.engine.snapshot))
            if not baseline.ok:
                raise VTError("invalid_command", f"the current script did not replay: {baseline.text()}")
            result = live.run(text)
        finally:
            live.close()
        if not result.ok:
            assert result.error is not None
            raise VTError("invalid_command", result.error.text().splitlines()[-1])
        return result.text()

    # ----- shared -----------------------------------------------------------------

    def script_for(self, snap: Snapshot) -> str:
        from vtkernel.engine.script import document_to_script

        return document_to_script(snap.doc)

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"engine": self.engine.stats()}
        hub = self.kernel.hub
        if hub is not None:
            out["hub"] = dict(hub.stats, clients=len(hub.clients))
        out["live"] = self.live.stats()
        out["clock"] = self.kernel.runtime.stats()
        return out

    def telemetry(self) -> dict[str, Any] | None:
        runtime = self.kernel.runtime
        if not runtime.alive:
            return None
        return runtime.telemetry()

    # ----- pictures and timing ---------------------------------------------------------

    def graph(self) -> Any:
        from vtkernel.pictures import Picture, patch_svg

        return Picture(patch_svg(self.engine.snapshot, self.engine.registry), "vtkernel patch")

    def timeline(self, name: str | None = None) -> Any:
        """An SVG timeline of what the recorder `name` (default: every recorder) received."""
        from vtkernel.pictures import Picture, timeline_svg

        doc = self.engine.snapshot.doc
        names = [name] if name else [n for n, m in sorted(doc.modules.items()) if m.type == "recorder"]
        if not names:
            raise VTError(
                "unknown_module",
                "no recorder module: add one, e.g. vt.module('rec', 'recorder'), and connect to rec.in",
            )
        events = {n: self.kernel.runtime.recorded(n) for n in names}
        return Picture(timeline_svg(events), "vtkernel timeline")

    def set_lookahead(self, seconds: float) -> str:
        self.kernel.runtime.set_lookahead(float(seconds))
        return f"lookahead {float(seconds) * 1000:.0f} ms"

    def action_from_hub(self, action: ShellAction) -> Any:
        """Carry out a non-engine verb sent as comm `text`; may return a Future."""
        verb = VERBS[action.verb]  # the parser only makes actions of verbs in the table
        if verb.notebook_only:
            raise VTError("invalid_command", f"{verb.name} is a notebook widget: run vt.{verb.name}() in a cell")
        vt = VT(self.engine, origin="text", services=self.fns)
        if verb.thread == "inline":  # a snapshot read: answered on the hub thread
            return vt.action(action)
        if verb.thread == "worker":
            return self._worker.submit(vt.action, action)
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                fut.set_result(vt.action(action))
            except BaseException as exc:
                fut.set_exception(exc)

        self.kernel.schedule_main(run)  # user code and the namespace: in order with cells
        return fut

    def close(self) -> None:
        """Shutdown: stop watching, then flush the session's last version and release its lock."""
        self._worker.close()
        self.live.close()
        self.sessions.close(5.0)


class _Worker:
    """One daemon thread that runs submitted calls in order (a stuck verb must not hold up the kernel's exit)."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], concurrent.futures.Future[Any]] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> concurrent.futures.Future[Any]:
        """Any thread: queue `fn(*args)`; its result or exception lands in the returned Future."""
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((fn, args, fut))
        return fut

    def close(self) -> None:
        """Any thread: the calls queued so far still run; the thread ends after them."""
        self._jobs.put(None)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            fn, args, fut = job
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(*args))
            except BaseException as exc:
                fut.set_exception(exc)


class _LiveOutput:
    """The output area of the cell that started a watch (an ipywidgets Output), for later reports."""

    def __init__(self, widget: Any) -> None:
        self.widget = widget

    def report(self, text: str, is_error: bool) -> None:
        if is_error:
            self.widget.append_stderr(text + "\n")
        else:
            self.widget.append_stdout(text + "\n")


def _live_output_area() -> _LiveOutput | None:
    try:
        import ipywidgets
        from IPython.display import display
    except ImportError:  # pragma: no cover - ipywidgets is a dependency
        return None
    widget = ipywidgets.Output(layout={"max_height": "16em", "overflow": "auto"})
    display(widget)
    return _LiveOutput(widget)
