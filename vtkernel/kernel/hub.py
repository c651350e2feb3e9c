"""The comm hub: protocol v1 (SPEC §5) for every client, on its own event loop.

The hub runs on one asyncio loop (the loop of an ipykernel subshell thread,
so it keeps serving while the main shell runs a cell). It

- receives client messages (`handle`), validates them with
  `vtkernel.protocol`, and submits commands to the engine queue;
- is woken by the engine's `Signal` after a publish, and by its `Mailbox`
  when outcomes arrive; it never runs on the engine thread;
- sends each client a `snapshot` first, then coalesced `delta`s rendered from
  the paths the engine recorded (`render_ops`), at most `max_delta_rate` per
  client, and an `ack` only once that client has been sent the version that
  contains the change;
- keeps all of its own traffic under `iopub_budget` messages per second with
  one token bucket, so jupyter_server never drops iopub messages; when both
  are due, replies go before a delta (a delta can be coalesced, an ack
  cannot), so every command gets its ack under load;
- makes the canonical script once per version, at most 4 times a second in
  all, and sends it only to clients whose code shell shows (`script_view`);
- answers a bug with `internal_error` (one line) and logs its traceback;
  refuses a bad hello (`parse_hello` raises) without subscribing it; a
  client whose transport fails is logged and dropped alone, and a message
  that cannot be encoded drops nobody.

Thread ownership: everything here runs on the hub loop's thread, except
`Hub.wake` (any thread; it only schedules onto the loop). `Hub.stats` is a
plain dict written on the hub thread; other threads read it racily, for
display only. Clients are objects with a `send(dict)` method (a comm, or
the GUI panel's relay).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ValidationError

from vtkernel.engine.delta import render_ops
from vtkernel.engine.document import Path, Snapshot
from vtkernel.engine.engine import Engine, Mailbox, Outcome, Signal
from vtkernel.language import ShellAction, parse_line
from vtkernel.protocol import (
    MAX_HAPS_WATCHES,
    MAX_MESSAGE_BYTES,
    MAX_ORIGIN_CHARS,
    CommandMsg,
    GetHapsMsg,
    GetScriptMsg,
    Hello,
    ResyncMsg,
    RunScriptMsg,
    ScriptViewMsg,
    TextMsg,
    VTError,
    describe_validation_error,
    error_msg,
    find_unencodable,
    message_size,
    parse_client_message,
    parse_command,
)

MAX_DELTA_RATE = 60.0  # per client, per second, on average
DELTA_BURST = 4.0  # a client idle for a while may get this many deltas at once (commands typed in a row)
# All hub messages per second, in one token bucket: no one-second window holds more than
# IOPUB_BUDGET + BUDGET_BURST = 450, under the spec's 500 for all of iopub (the rest is headroom
# for the kernel's own status and stream messages).
IOPUB_BUDGET = 400.0
BUDGET_BURST = 50.0
TELEMETRY_RATE = 30.0
HAPS_INTERVAL = 0.2  # s: a client gets a watched module's fresh haps at most 5 times a second
SCRIPT_INTERVAL = 0.25  # scripts are made at most 4 times per second in all, each shared by every showing client
# Script text sent per second to all clients together (a bucket of as much): jupyter_server drops
# iopub data beyond 1 MB/s by default, and a 2,000-module script is about 120 KiB.
SCRIPT_BYTES_RATE = 400_000.0

log = logging.getLogger("vtkernel.hub")


class Sender(Protocol):
    def send(self, msg: dict[str, Any]) -> None: ...


@dataclass(eq=False)
class Client:
    """One subscriber. Owned by the hub loop."""

    sender: Sender
    hello: Hello
    cid: int
    sent: Snapshot | None = None  # the version this client holds
    # Per-client token bucket for deltas: refills at max_delta_rate, holds DELTA_BURST.
    delta_tokens: float = DELTA_BURST
    delta_tokens_at: float = 0.0
    timer: asyncio.TimerHandle | None = None
    timer_due: float = 0.0  # monotonic time at which `timer` fires
    # Replies (acks, errors) waiting for the version they name, or for budget: (version, msg).
    outbox: deque[tuple[int, dict[str, Any]]] = field(default_factory=deque)
    needs_snapshot: bool = False
    closed: bool = False
    # Modules whose haps this client watches (`get_haps` with watch): module -> (begin, end, svg).
    haps_watch: dict[str, tuple[float, float, bool, int]] = field(default_factory=dict)
    haps_due: set[str] = field(default_factory=set)  # watched modules changed since their last `haps`
    haps_sent_at: float = 0.0
    haps_timer: asyncio.TimerHandle | None = None
    # iopub messages ipykernel publishes for each message this client sends (the panel's widget
    # comm keeps its busy/idle pair; hub comms go without, see subshell.dispatch_quietly).
    iopub_per_message: int = 0

    # The code shell is showing (hello `script: true`, then `script_view` messages): scripts are sent.
    script_view: bool = False
    script_due: bool = False  # the version this client holds has not had its script sent yet
    script_sent: int = -1  # the version of the last script this client got

    @property
    def wants_script(self) -> bool:
        return self.script_view


class Hub:
    """Protocol-v1 server. Create it on the loop that will run it (see module docstring)."""

    def __init__(
        self,
        engine: Engine,
        loop: asyncio.AbstractEventLoop,
        *,
        actions: Callable[[ShellAction], concurrent.futures.Future[Any] | Any] | None = None,
        run_script: Callable[[str, str], concurrent.futures.Future[Any]] | None = None,
        script_text: Callable[[Snapshot], str] | None = None,
        telemetry: Callable[[], dict[str, Any] | None] | None = None,
        max_delta_rate: float = MAX_DELTA_RATE,
        iopub_budget: float = IOPUB_BUDGET,
    ) -> None:
        self.engine = engine
        self.loop = loop
        self.actions = actions
        self.run_script = run_script
        self.script_text = script_text
        self.telemetry = telemetry
        self.min_interval = 1.0 / max_delta_rate
        self.budget_rate = iopub_budget
        self._tokens = BUDGET_BURST
        self._tokens_at = time.monotonic()
        self._clients: dict[int, Client] = {}
        self._ids = itertools.count(1)
        self._signal = Signal(self._on_publish, loop.call_soon_threadsafe)
        self._mailbox = Mailbox(Signal(self._on_outcomes, loop.call_soon_threadsafe))
        self._telemetry_task: asyncio.TimerHandle | None = None
        self._last_telemetry: dict[str, Any] | None = None
        self._telemetry_seen: set[int] = set()  # clients that got `_last_telemetry`
        self._telemetry_turn = itertools.count()
        self._script: tuple[int, str] | None = None  # (version, canonical script): one per version, shared
        self._script_next = 0.0  # monotonic time before which no new shared script is made
        self._script_bytes = SCRIPT_BYTES_RATE  # token bucket of script characters (SCRIPT_BYTES_RATE)
        self._script_bytes_at = time.monotonic()
        self.stats = {"sent": 0, "deltas": 0, "acks": 0, "errors": 0, "snapshots": 0, "send_errors": 0, "scripts_made": 0}
        engine.add_signal(self._signal)

    # ----- clients -------------------------------------------------------------

    def add_client(self, sender: Sender, hello_data: Any = None) -> Client:
        """Subscribe a client: it gets a snapshot (and the schema) at once.

        A bad hello raises `VTError` and subscribes nothing: the caller
        answers it with an `error` (and closes the comm).
        """
        hello = parse_hello(hello_data)
        client = Client(sender, hello, next(self._ids), iopub_per_message=int(getattr(sender, "iopub_per_message", 0)))
        client.script_view = bool(getattr(hello, "script", False))
        self._clients[client.cid] = client
        self._send_snapshot(client)
        self._send(client, {"type": "schema", "types": self.engine.registry.schema_json()})
        if client.script_due:
            self._schedule_flush(client)
        if hello.telemetry:
            self._ensure_telemetry()
        return client

    def broadcast(self, msg: dict[str, Any]) -> None:
        """Send one message (a `report`) to every client; hub thread. Rare by nature, so it may overdraw the budget."""
        for client in list(self._clients.values()):
            self._send(client, msg)

    def broadcast_schema(self) -> None:
        """A module type was registered: every client gets the new schema (its controls, its ports)."""
        msg = {"type": "schema", "types": self.engine.registry.schema_json()}
        for client in list(self._clients.values()):
            self._send(client, msg)

    def remove_client(self, client: Client) -> None:
        client.closed = True
        if client.timer is not None:
            client.timer.cancel()
        if client.haps_timer is not None:
            client.haps_timer.cancel()
        self._clients.pop(client.cid, None)

    def close(self) -> None:
        self.engine.remove_signal(self._signal)
        for client in list(self._clients.values()):
            self.remove_client(client)
        if self._telemetry_task is not None:
            self._telemetry_task.cancel()

    @property
    def clients(self) -> list[Client]:
        return list(self._clients.values())

    # ----- incoming ------------------------------------------------------------

    def handle(self, client: Client, data: Any) -> None:
        """One message from a client. Never raises: every problem becomes an `error` reply."""
        msg_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool) or find_unencodable(msg_id) is not None:
            msg_id = None  # an id we could not echo back is not recovered
        if client.iopub_per_message:  # what the client's transport itself publishes per message (status pairs)
            self._refill()
            self._tokens -= client.iopub_per_message
        try:
            if message_size(data) > MAX_MESSAGE_BYTES:
                raise VTError("bad_message", f"message larger than {MAX_MESSAGE_BYTES} bytes refused")
            msg = parse_client_message(data)
            if isinstance(msg, CommandMsg):
                cmd = parse_command(msg.command)
                self._submit(client, msg.id, cmd)
            elif isinstance(msg, TextMsg):
                self._text(client, msg.id, msg.text)
            elif isinstance(msg, ResyncMsg):
                client.needs_snapshot = True
                self._schedule_flush(client)
            elif isinstance(msg, GetScriptMsg):
                self._send_script(client)
            elif isinstance(msg, ScriptViewMsg):
                client.script_view = client.script_due = msg.on
                client.script_sent = -1  # turned on: the current script, even if it got it before
                if msg.on:
                    self._script_next = 0.0  # at once
                self._schedule_flush(client)
            elif isinstance(msg, RunScriptMsg):
                self._run_script(client, msg.id, msg.text)
            elif isinstance(msg, GetHapsMsg):
                self._get_haps(client, msg)
        except VTError as exc:
            self._reply_error(client, msg_id, exc)
        except Exception as exc:  # a bug in the hub: its traceback goes to the kernel log, the client gets one line
            log.exception("internal error handling a %r message from client %d (%s)", _kind(data), client.cid, client.hello.shell)
            self._reply_error(client, msg_id, internal_error(exc))

    def refuse(self, client: Client, msg_id: Any, exc: VTError) -> None:
        """Answer a message the kernel refused before it reached `handle` (too deep, a huge number)."""
        if not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool) or find_unencodable(msg_id) is not None:
            msg_id = None
        self._reply_error(client, msg_id, exc)

    def _submit(self, client: Client, msg_id: Any, cmd: BaseModel) -> None:
        self.engine.submit(cmd, origin=client.hello.shell, reply=self._mailbox, token=(client.cid, msg_id))

    def _text(self, client: Client, msg_id: Any, text: str) -> None:
        if "\n" in text.strip():
            raise VTError("invalid_command", "a text message holds one command line")
        parsed = parse_line(text)
        if parsed is None:
            self._ack(client, msg_id, self.engine.version)
            return
        if isinstance(parsed, BaseModel):
            self._submit(client, msg_id, parsed)
            return
        if self.actions is None:
            raise VTError("invalid_command", f"'{parsed.verb}' is not available here")
        result = self.actions(parsed)
        if isinstance(result, concurrent.futures.Future):
            fut = asyncio.wrap_future(result, loop=self.loop)
            fut.add_done_callback(lambda f: self._action_done(client, msg_id, f))
        else:
            self._ack(client, msg_id, self.engine.version, result)

    def _action_done(self, client: Client, msg_id: Any, fut: asyncio.Future[Any]) -> None:
        exc = fut.exception()
        if isinstance(exc, VTError):
            self._reply_error(client, msg_id, exc)
        elif exc is not None:
            log.error("internal error in a verb for client %d (%s)", client.cid, client.hello.shell, exc_info=(type(exc), exc, exc.__traceback__))
            self._reply_error(client, msg_id, internal_error(exc))
        else:
            self._ack(client, msg_id, self.engine.version, fut.result())

    def _run_script(self, client: Client, msg_id: Any, text: str) -> None:
        if self.run_script is None:
            raise VTError("invalid_command", "running an edited script is not available here")
        fut = asyncio.wrap_future(self.run_script(text, client.hello.shell), loop=self.loop)
        fut.add_done_callback(lambda f: self._action_done(client, msg_id, f))

    # ----- outgoing ------------------------------------------------------------

    def wake(self) -> None:
        """Any thread: make the hub look at the newest version soon."""
        self._signal.set()

    def _on_publish(self) -> None:
        for client in list(self._clients.values()):
            self._schedule_flush(client)

    def _on_outcomes(self) -> None:
        for outcome in self._mailbox.take_all():
            self._outcome(outcome)

    def _outcome(self, outcome: Outcome) -> None:
        cid, msg_id = outcome.token
        client = self._clients.get(cid)
        if client is None:
            return
        if outcome.error is not None:
            self._reply_error(client, msg_id, outcome.error)
        else:
            self._ack(client, msg_id, outcome.version)

    def _ack(self, client: Client, msg_id: Any, version: int, output: Any = None) -> None:
        msg: dict[str, Any] = {"type": "ack", "id": msg_id, "version": version}
        if output is not None:
            msg["output"] = output if isinstance(output, str) else json.dumps(output)
        # Held until this client has been sent `version`, so an ack never outruns its delta.
        self._queue_reply(client, version, msg)

    def _reply_error(self, client: Client, msg_id: Any, exc: VTError) -> None:
        self.stats["errors"] += 1
        self._queue_reply(client, -1, error_msg(msg_id, exc.code, exc.message))

    def _queue_reply(self, client: Client, version: int, msg: dict[str, Any]) -> None:
        client.outbox.append((version, msg))
        self._schedule_flush(client)

    def _schedule_flush(self, client: Client) -> None:
        """New work for this client (a version, a reply): flush now, unless a pending timer is as soon as it could go.

        The one timer per client may be waiting for something slower than a
        delta (the shared script's SCRIPT_INTERVAL, the script byte budget);
        new work must not wait behind it, or every change would reach a panel
        showing its code shell up to SCRIPT_INTERVAL late. A timer that waits
        only for the delta rate or the iopub budget is kept: flushing earlier
        could not send anything more.
        """
        if client.closed:
            return
        if client.timer is not None:
            now = time.monotonic()
            self._refill_client(client, now)
            ready = now + max(self._budget_wait(), (1.0 - client.delta_tokens) * self.min_interval)
            if client.timer_due <= ready + 0.001:
                return
            client.timer.cancel()
            client.timer = None
        self._flush(client)

    def _timer_fired(self, client: Client) -> None:
        client.timer = None
        if not client.closed:
            self._flush(client)

    def _flush(self, client: Client) -> None:
        """Deliver what this client is owed, within its delta rate and the shared budget.

        Order: a requested snapshot; the replies whose version the client
        already holds; one delta up to the newest version; the replies that
        delta unlocked. Replies go before a delta because they cannot be
        coalesced and a delta can: under a flood one delta unlocks many acks,
        and the budget goes to acks rather than to deltas nobody waits for.
        Whatever cannot go now is retried by one timer per client.
        """
        now = time.monotonic()
        self._refill_client(client, now)
        if client.needs_snapshot and self._has_token():
            client.needs_snapshot = False
            self._send_snapshot(client)
        held = self._send_held_replies(client)
        snap = self.engine.snapshot
        behind = client.sent is not None and client.sent.version < snap.version
        if behind and not client.needs_snapshot and client.delta_tokens >= 1.0 and self._has_token():
            self._send_delta(client, snap)
            behind = False
            held = self._send_held_replies(client)
        if client.script_due and not client.needs_snapshot:
            self._send_shared_script(client, now)
        waiting_reply = bool(client.outbox) and client.outbox[0][0] <= held
        needs_delta = behind or (bool(client.outbox) and client.outbox[0][0] > held)
        if not (needs_delta or client.needs_snapshot or waiting_reply or client.script_due):
            return
        waits = []
        if client.needs_snapshot or waiting_reply:
            waits.append(0.0)
        if needs_delta:
            waits.append((1.0 - client.delta_tokens) * self.min_interval)
        if client.script_due:
            waits.append(max(self._script_next - now, -self._script_bytes / SCRIPT_BYTES_RATE))
        wait = max(self._budget_wait(), min(waits))
        client.timer_due = time.monotonic() + max(wait, 0.001)
        client.timer = self.loop.call_later(max(wait, 0.001), self._timer_fired, client)

    def _send_held_replies(self, client: Client) -> int:
        """Send queued replies whose version this client holds, within the budget; return that version."""
        held = client.sent.version if client.sent is not None else -1
        outbox = client.outbox
        while outbox and outbox[0][0] <= held and self._has_token():
            self._send(client, outbox.popleft()[1])
        return held

    def _send_delta(self, client: Client, snap: Snapshot) -> None:
        base = client.sent
        assert base is not None
        paths = self._paths_between(base.version, snap.version)
        if paths is None:  # the history ring no longer reaches this client's base
            self._send_snapshot(client)
            return
        ops = render_ops(base.doc, snap.doc, paths)
        origin = safe_origin(snap.change.origin) if snap.change is not None else ""
        self._send(client, {"type": "delta", "base": base.version, "version": snap.version, "ops": ops, "origin": origin})
        self.stats["deltas"] += 1
        client.sent = snap
        client.delta_tokens -= 1.0
        client.script_due = client.script_view
        if client.haps_watch:
            self._haps_after(client, paths)

    def _paths_between(self, base: int, version: int) -> list[Path] | None:
        snaps = self.engine.history_since(base)
        if snaps is None:
            return None
        paths: list[Path] = []
        for s in snaps:
            if s.version > version:
                break
            if s.change is not None:
                paths.extend(s.change.paths)
        return paths

    def _send_snapshot(self, client: Client) -> None:
        snap = self.engine.snapshot
        self._send(client, {"type": "snapshot", "version": snap.version, "state": snap.doc.to_json()})
        self.stats["snapshots"] += 1
        client.sent = snap
        client.delta_tokens = max(0.0, client.delta_tokens - 1.0)
        client.script_due = client.script_view
        if client.haps_watch:
            self._haps_after(client, None)

    def _send_script(self, client: Client) -> None:
        snap = client.sent or self.engine.snapshot
        self._send(client, {"type": "script", "version": snap.version, "text": self._script_of(snap)})

    def _send_shared_script(self, client: Client, now: float) -> None:
        """The newest shared script this client's document has reached, if it has not had it.

        One script is made for the newest version at most every SCRIPT_INTERVAL
        and sent to every showing client once it holds that version, so a
        drag costs a few scripts a second however many panels show one, and a
        script is never ahead of the document it describes.
        """
        held = client.sent.version if client.sent is not None else -1
        cached = self._script
        if (cached is None or cached[0] < held) and now >= self._script_next:
            self._script_of(self.engine.snapshot)
            self._script_next = now + SCRIPT_INTERVAL
            cached = self._script
        if cached is None or cached[0] > held or not self._has_token():
            return  # the client's delta comes first; or no budget now
        if cached[0] > client.script_sent:
            self._script_bytes = min(SCRIPT_BYTES_RATE, self._script_bytes + (now - self._script_bytes_at) * SCRIPT_BYTES_RATE)
            self._script_bytes_at = now
            if self._script_bytes < 0:
                return  # the script byte budget is spent: a later flush sends the newest
            self._send(client, {"type": "script", "version": cached[0], "text": cached[1]})
            self._script_bytes -= len(cached[1])
            client.script_sent = cached[0]
        client.script_due = cached[0] < held

    def _script_of(self, snap: Snapshot) -> str:
        """The canonical script of `snap`, made once per version however many clients show it."""
        if self.script_text is None:
            raise VTError("invalid_command", "script generation is not available here")
        cached = self._script
        if cached is not None and cached[0] == snap.version:
            return cached[1]
        text = self.script_text(snap)
        self.stats["scripts_made"] += 1
        self._script = (snap.version, text)
        return text

    # ----- haps (the pianoroll) -----------------------------------------------------

    def _get_haps(self, client: Client, msg: GetHapsMsg) -> None:
        """Answer from the version this client holds, so the haps match the document it shows."""
        begin, end = msg.cycles
        if not msg.watch:
            client.haps_watch.pop(msg.module, None)
        elif msg.module not in client.haps_watch and len(client.haps_watch) >= MAX_HAPS_WATCHES:
            raise VTError("invalid_command", f"a client may watch at most {MAX_HAPS_WATCHES} modules' haps")
        self._send_haps(client, msg.module, begin, end, msg.svg, msg.width, msg.id)
        if msg.watch:
            client.haps_watch[msg.module] = (begin, end, msg.svg, msg.width)

    def _send_haps(self, client: Client, module: str, begin: float, end: float, svg: bool, width: int, msg_id: Any) -> None:
        from vtkernel.pictures import haps_reply

        snap = client.sent or self.engine.snapshot
        reply = haps_reply(snap.doc, snap.version, self.engine.registry, module, begin, end, svg=svg, width=width, msg_id=msg_id)
        self._send(client, reply)

    def _haps_after(self, client: Client, paths: list[Path] | None) -> None:
        """After a delta (its `paths`) or a snapshot (None): the watched modules it touched are due."""
        meter = paths is None or any(p[:1] == ("clock",) and (len(p) == 1 or p[1] == "meter") for p in paths)
        for module in client.haps_watch:
            if meter or any(p[:1] == ("modules",) and (len(p) == 1 or p[1] == module) for p in paths or ()):
                client.haps_due.add(module)
        if client.haps_timer is None:  # else the pending timer sends them
            self._flush_haps(client)

    def _flush_haps(self, client: Client) -> None:
        """Send the due haps, at most every HAPS_INTERVAL per client, from the newest version it holds.

        A pianoroll costs far more than a delta (a 16-voice pattern over 4 cycles: tens of ms and
        ~140 KiB with its SVG, benchmarks/bench_pianoroll.py), so a slider dragged at 60 deltas/s
        must not cost 60 of them; the last change is always sent, when the interval is up.
        """
        client.haps_timer = None
        if client.closed or not client.haps_due:
            return
        wait = client.haps_sent_at + HAPS_INTERVAL - time.monotonic()
        if wait > 0:
            client.haps_timer = self.loop.call_later(wait, self._flush_haps, client)
            return
        client.haps_sent_at = time.monotonic()
        doc = client.sent.doc if client.sent is not None else self.engine.snapshot.doc
        due, client.haps_due = client.haps_due, set()
        for module in sorted(due):
            if module not in client.haps_watch:
                continue
            if module not in doc.modules:
                del client.haps_watch[module]  # removed: the client sees that in the delta itself
                continue
            begin, end, svg, width = client.haps_watch[module]
            try:
                self._send_haps(client, module, begin, end, svg, width, None)
            except VTError as exc:  # e.g. it became a signal module: stop watching, say why once
                del client.haps_watch[module]
                self._reply_error(client, None, exc)

    # ----- telemetry -----------------------------------------------------------

    def _ensure_telemetry(self) -> None:
        if self._telemetry_task is None and self.telemetry is not None:
            self._telemetry_task = self.loop.call_later(1.0 / TELEMETRY_RATE, self._telemetry_tick)

    def _telemetry_tick(self) -> None:
        self._telemetry_task = None
        subscribers = [c for c in self._clients.values() if c.hello.telemetry]
        if not subscribers or self.telemetry is None:
            return
        data = self.telemetry()
        if data is not None:
            msg = {"type": "telemetry", "beat": data.get("beat", 0.0), "playing": data.get("playing", False), "values": data.get("values", {})}
            if data.get("link") is not None:  # peers and phase, for the panel's Link indicator
                msg["link"] = data["link"]
            if msg == self._last_telemetry:  # stopped and unchanged: every open panel would pay for nothing
                subscribers = [c for c in subscribers if c.cid not in self._telemetry_seen]
            else:
                self._last_telemetry = msg
                self._telemetry_seen = set()
            if subscribers:  # start at a different client each tick, so a tight budget starves nobody
                k = next(self._telemetry_turn) % len(subscribers)
                subscribers = subscribers[k:] + subscribers[:k]
            for client in subscribers:
                if not self._has_token():
                    break  # the rest are not marked seen: they get it at a later tick
                self._send(client, msg)
                self._telemetry_seen.add(client.cid)
        self._telemetry_task = self.loop.call_later(1.0 / TELEMETRY_RATE, self._telemetry_tick)

    # ----- the iopub budget ------------------------------------------------------

    def _refill_client(self, client: Client, now: float) -> None:
        elapsed = now - client.delta_tokens_at if client.delta_tokens_at else 0.0
        client.delta_tokens = min(DELTA_BURST, client.delta_tokens + elapsed / self.min_interval)
        client.delta_tokens_at = now

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(BUDGET_BURST, self._tokens + (now - self._tokens_at) * self.budget_rate)
        self._tokens_at = now

    def _has_token(self) -> bool:
        self._refill()
        return self._tokens >= 1.0

    def _budget_wait(self) -> float:
        self._refill()
        return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.budget_rate

    def _send(self, client: Client, msg: dict[str, Any]) -> None:
        """Send one message and spend one token of the shared iopub budget.

        Callers check `_has_token` first, except for a client's very first
        snapshot and schema, which may briefly overdraw (the bucket refills).
        """
        if client.closed:
            return
        self._refill()
        self._tokens -= 1.0
        try:
            client.sender.send(msg)
        except (ValueError, TypeError):
            # The message could not be encoded: a bug (validation lets no such value in),
            # never this client's fault. Say so in the kernel log and keep the client.
            self.stats["send_errors"] += 1
            log.exception("could not encode a %r message for client %d (%s)", msg["type"], client.cid, client.hello.shell)
            return
        except Exception:
            # This client's transport broke: drop it alone, the others carry on.
            self.stats["send_errors"] += 1
            log.warning("dropped client %d (%s): its send failed", client.cid, client.hello.shell, exc_info=True)
            self.remove_client(client)
            return
        self.stats["sent"] += 1
        if msg["type"] == "ack":
            self.stats["acks"] += 1


def parse_hello(data: Any) -> Hello:
    """Validate a comm_open's data; raise VTError(`bad_message`) with one line."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise VTError("bad_message", "bad comm_open data: expected an object {protocol: 1, shell, telemetry}")
    try:
        return Hello.model_validate(data)
    except VTError as exc:  # the shell name: too long, or not valid text
        raise VTError("bad_message", f"bad comm_open data: {exc.message}") from None
    except ValidationError as exc:
        raise VTError("bad_message", "bad comm_open data: " + describe_validation_error(exc, "hello")) from None


def safe_origin(origin: str) -> str:
    """An origin fit to send: valid UTF-8 and at most MAX_ORIGIN_CHARS (origins come from file names too)."""
    if len(origin) > MAX_ORIGIN_CHARS:
        origin = origin[:MAX_ORIGIN_CHARS]
    if not origin.isascii() and find_unencodable(origin) is not None:
        origin = origin.encode("utf-8", "backslashreplace").decode("utf-8")
    return origin


def internal_error(exc: BaseException) -> VTError:
    """What a client is told about a bug: one line, code `internal_error` (the traceback is logged)."""
    return VTError("internal_error", f"{type(exc).__name__}: {exc}"[:300].replace("\n", " "))


def _kind(data: Any) -> str:
    kind = data.get("type") if isinstance(data, dict) else None
    return kind[:40] if isinstance(kind, str) else type(data).__name__
