"""The one place that touches ipykernel's private subshell API.

ipykernel 7.4 can run shell messages on subshell threads. The hub uses one
subshell so that comm traffic is served while the main shell runs a cell,
for any frontend, including a plain jupyter_client that sends no subshell
header:

- `create_hub_subshell` makes the subshell on the shell-channel thread
  (`shell_channel_thread.manager._create_subshell`, private);
- `HubComm._reply_subshell_for` sends every `comm_msg`/`comm_close` of hub
  comms to that subshell (ipykernel routes only those two by comm);
- `reroute_comm_open` rewrites the header of a `comm_open` for our target so
  that it, too, runs on the subshell (re-signed with the session key);
- `dispatch_quietly` runs a hub comm message on the subshell without the
  busy/idle status pair ipykernel publishes for every shell message
  (`dispatch_shell(..., concurrent=True)`, which is private): that pair
  tripled iopub traffic per command and pushed it past every budget;
- `screen_message` bounds every shell message before anything parses it
  (`Session.unpack` would raise on 10,000 levels of nesting or a 5,001-digit
  integer, and ipykernel would log a traceback and drop the message with no
  reply); `route_shell_message` applies both;
- `HubShellRouting` is the kernel's mixin that overrides ipykernel's private
  `shell_channel_thread_main` (route) and `shell_main` (quiet dispatch): the
  kernel class itself touches no private method.

These are pinned to `ipykernel>=7.4,<7.5`; `tests/kernel/test_subshell_glue.py`
fails loudly if any of them stops working.

Thread ownership: `create_hub_subshell` is called on the kernel's main
thread after start; `route_shell_message`, `reroute_comm_open` and
`shell_channel_thread_main` run on the shell-channel thread;
`is_hub_comm_message`, `dispatch_quietly` and `shell_main` on the thread of
the shell a message was routed to (the hub's subshell for hub comms).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import zmq

from vtkernel.limits import COMM_TARGET, MAX_MESSAGE_BYTES

log = logging.getLogger("vtkernel.subshell")

MAX_JSON_DEPTH = 100  # nesting levels of any frame; documents need about 10
MAX_NUMBER_DIGITS = 1000  # digits in one JSON number (Python refuses ints beyond 4,300)
MAX_COMM_FRAME_BYTES = 2 * MAX_MESSAGE_BYTES  # a bigger comm frame is refused unread (1 MiB is refused after reading)


class SubshellUnavailable(RuntimeError):
    pass


def create_hub_subshell(kernel: Any, timeout: float = 10.0) -> tuple[str, asyncio.AbstractEventLoop, threading.Thread]:
    """Create the hub's subshell; return (subshell_id, its asyncio loop, its thread)."""
    channel = getattr(kernel, "shell_channel_thread", None)
    if channel is None or not getattr(kernel, "_supports_kernel_subshells", False):
        raise SubshellUnavailable("this ipykernel has no subshells")
    manager = channel.manager  # created lazily, and only from the main thread
    done: concurrent.futures.Future[str] = concurrent.futures.Future()

    def create() -> None:
        try:
            done.set_result(manager._create_subshell())
        except BaseException as exc:  # pragma: no cover - reported to the caller
            done.set_exception(exc)

    channel.io_loop.add_callback(create)
    subshell_id = done.result(timeout)
    with manager._lock_cache:
        thread = manager._cache[subshell_id]
    loop = thread.io_loop.asyncio_loop
    return subshell_id, loop, thread


MAX_PENDING_COMMS = 1000


def _pending_hub_comms(kernel: Any) -> dict[str, None]:
    """Comm ids of our `comm_open`s sent to the subshell whose comm may not exist yet (an ordered set).

    Owned by the shell-channel thread.
    """
    pending: dict[str, None] | None = getattr(kernel, "_vt_pending_hub_comms", None)
    if pending is None:
        pending = kernel._vt_pending_hub_comms = {}
    return pending


def reroute_comm_open(kernel: Any, msg: list[Any], subshell_id: str) -> list[Any]:
    """Return `msg` re-addressed to the hub's subshell if it is a `comm_open` for our target,
    or a `comm_msg`/`comm_close` of such a comm that does not exist yet.

    ipykernel routes a `comm_msg` by its comm's `_reply_subshell_for`; a
    message sent right after the `comm_open` can reach the shell-channel
    thread before the subshell has created the comm, and would go to the main
    shell, which drops it ("No such comm"). Sent to the subshell instead, it
    queues behind its `comm_open`.

    Reads the frames without `Session.deserialize`, which would record the
    signature for replay protection and make ipykernel's own deserialize of
    the same message fail as a duplicate. A message we rewrite is verified
    first (HMAC over the original frames) and then re-signed.
    """
    session = kernel.session
    idents, frames = session.feed_identities(msg, copy=False)
    if len(frames) < 5:
        return msg
    header = session.unpack(_bytes(frames[1]))
    if not isinstance(header, dict) or header.get("subshell_id"):
        return msg
    kind = header.get("msg_type")
    pending = _pending_hub_comms(kernel)
    if kind == "comm_open":
        content = session.unpack(_bytes(frames[4]))
        if not isinstance(content, dict) or content.get("target_name") != COMM_TARGET:
            return msg
    elif kind in ("comm_msg", "comm_close") and pending:
        content = session.unpack(_bytes(frames[4]))
        comm_id = content.get("comm_id") if isinstance(content, dict) else None
        if comm_id not in pending:
            return msg
        if kernel.comm_manager.get_comm(comm_id) is not None:  # it exists now: ipykernel routes it
            pending.pop(comm_id, None)
            return msg
    else:
        return msg
    if session.auth is not None:
        expected = session.sign([_bytes(f) for f in frames[1:5]])
        if not hmac.compare_digest(expected, _bytes(frames[0])):
            return msg  # let ipykernel reject it as it would any badly signed message
    comm_id = content.get("comm_id")
    if kind == "comm_open" and isinstance(comm_id, str):
        pending[comm_id] = None
        while len(pending) > MAX_PENDING_COMMS:
            pending.pop(next(iter(pending)))
    elif kind == "comm_close":
        pending.pop(comm_id, None)
    new_header = dict(header)
    new_header["subshell_id"] = subshell_id
    rebuilt = {
        "header": new_header,
        "parent_header": session.unpack(_bytes(frames[2])),
        "metadata": session.unpack(_bytes(frames[3])),
        "content": content,
        "buffers": [_bytes(b) for b in frames[5:]],
    }
    return [zmq.Frame(part) for part in session.serialize(rebuilt, ident=idents)]


def _bytes(frame: Any) -> bytes:
    return frame if isinstance(frame, bytes) else bytes(frame.bytes)


def pin_to_subshell(comm: Any, subshell_id: str) -> None:
    """Route every later `comm_msg`/`comm_close` of this comm to the hub's subshell.

    ipykernel asks `comm._reply_subshell_for(data, default)` on the
    shell-channel thread; by default it answers with the subshell of the last
    message the comm *sent*, which for hub sends is the busy main shell.
    """
    comm._reply_subshell_for = lambda data, default: subshell_id


# ----- bounding messages before they are parsed ----------------------------------------

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_LONG_NUMBER = re.compile(rb"\d{%d,}" % (MAX_NUMBER_DIGITS + 1))
_PAIR = re.compile(rb"\[\]|\{\}")
_DEEP_RUN = re.compile(rb"[\[{]{%d}" % (MAX_JSON_DEPTH + 1))
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_COMM_TYPES = {b"comm_open", b"comm_msg", b"comm_close"}


def json_problem(raw: bytes) -> str | None:
    """Why this JSON text must not be parsed (too deep, a huge number, unbalanced), or None.

    Linear and parse-free: strings are blanked by one regex, then brackets are
    peeled pair by pair at most MAX_JSON_DEPTH times (each pass is C-speed).
    """
    if len(raw) < 2 * MAX_JSON_DEPTH and len(raw) <= MAX_NUMBER_DIGITS:
        return None  # too short to be too deep or to hold a huge number
    bare = _STRING.sub(b'""', raw)
    if _LONG_NUMBER.search(bare) is not None:
        return f"a number with more than {MAX_NUMBER_DIGITS} digits"
    brackets = bare.translate(None, _NOT_BRACKET)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return None
        if _DEEP_RUN.search(brackets) is not None:  # MAX_JSON_DEPTH + 1 opening brackets in a row
            break
        peeled = _PAIR.sub(b"", brackets)
        if peeled == brackets:
            return "unbalanced brackets"
        brackets = peeled
    return None if not brackets else f"nested deeper than {MAX_JSON_DEPTH} levels"


_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]|[^\s\[\]{}:,"]+')


def recover_ids(content: bytes) -> tuple[str | None, Any]:
    """`(comm_id, data.id)` read from a comm message that is not parsed whole.

    A shallow token walk: only keys at the top of `content` and of its `data`
    object count, so an `"id"` buried in the hostile part is not mistaken for
    the message's.
    """
    comm_id: str | None = None
    msg_id: Any = None
    depth = 0
    path: list[bytes | None] = []  # the key each open object was entered through
    key: bytes | None = None
    expect_value = False
    for m in _TOKEN.finditer(content):
        tok = m.group()
        if tok in (b"{", b"["):
            path.append(key if expect_value else None)
            depth += 1
            key, expect_value = None, False
        elif tok in (b"}", b"]"):
            depth -= 1
            if path:
                path.pop()
            key, expect_value = None, False
            if depth <= 0:
                break
        elif tok == b":":
            expect_value = True
        elif tok == b",":
            key, expect_value = None, False
        elif expect_value:
            if depth == 1 and key == b'"comm_id"' and tok.startswith(b'"') and len(tok) <= 202:
                comm_id = _scalar(tok) if isinstance(_scalar(tok), str) else None
            elif depth == 2 and key == b'"id"' and path[-1] == b'"data"' and len(tok) <= 202:
                msg_id = _scalar(tok)
            expect_value = False
        else:
            key = tok
        if comm_id is not None and msg_id is not None:
            break
    return comm_id, msg_id


def _scalar(tok: bytes) -> Any:
    try:
        value = json.loads(tok)
    except ValueError:
        return None
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def screen_message(kernel: Any, msg: list[Any]) -> tuple[str, str, bytes] | None:
    """None if `msg` may be parsed; else `(msg_type, why, content frame)` for a refused message.

    Runs on the shell-channel thread before ipykernel (or `reroute_comm_open`)
    unpacks anything. A refused message whose signature does not verify is
    reported as `unsigned` (no id is read from it, nobody is answered).
    """
    session = kernel.session
    _, frames = session.feed_identities(msg, copy=False)
    if len(frames) < 5:
        return None
    parts = [_bytes(f) for f in frames[1:5]]
    header, content = parts[0], parts[3]
    msg_type = _peek_type(header)
    if msg_type in _COMM_TYPES and len(content) > MAX_COMM_FRAME_BYTES:
        why = f"a comm message over {MAX_COMM_FRAME_BYTES} bytes"
    else:
        why = next((p for p in map(json_problem, parts) if p is not None), "")
        if not why:
            why = _shape_problem(session.unpack, parts, msg_type in _COMM_TYPES)
    if not why:
        return None
    if session.auth is not None and not hmac.compare_digest(session.sign(parts), _bytes(frames[0])):
        # Not from a client that holds the key: nobody to answer, and nothing of it is read.
        return "unsigned", f"{why}, with a bad signature", b""
    return (msg_type or b"?").decode("ascii", "replace"), why, content


def _shape_problem(unpack: Callable[[bytes], Any], parts: list[bytes], comm: bool) -> str:
    """Why a bounded message would still make ipykernel log a traceback ("" if none).

    ipykernel unpacks every frame, and for comm messages indexes
    `content["comm_id"]` on two threads; a frame that is not JSON, or comm
    content without a comm id, would raise there. Parsing these frames once
    more with the session's own unpacker (orjson when installed) costs a few
    microseconds (milliseconds for a 1 MiB cell).
    """
    try:
        header, parent, metadata, content = (unpack(p) for p in parts)
    except (ValueError, TypeError, RecursionError) as exc:
        return f"a frame is not valid JSON ({type(exc).__name__})"
    if not all(isinstance(x, dict) for x in (header, parent, metadata, content)):
        return "header, parent, metadata and content must be JSON objects"
    if comm and not isinstance(content.get("comm_id"), str):
        return "a comm message needs a string comm_id"
    return ""


def _main_msg_type(kernel: Any, msg: list[Any]) -> bytes | None:
    """The msg_type of a shell message, peeked from its header frame without parsing it."""
    _, frames = kernel.session.feed_identities(msg, copy=False)
    return _peek_type(_bytes(frames[1])) if len(frames) >= 2 else None


def _peek_type(header: bytes) -> bytes | None:
    m = re.search(rb'"msg_type"\s*:\s*"([a-z_]{1,40})"', header[:4096])
    return m.group(1) if m else None


def route_shell_message(
    kernel: Any,
    msg: list[Any],
    subshell_id: str | None,
    refuse: Callable[[str | None, Any, str], None],
) -> list[Any] | None:
    """The kernel's step before ipykernel's `shell_channel_thread_main` (shell-channel thread).

    Returns the message to hand on (re-addressed if it is our `comm_open`), or
    None if it was refused: a refused comm message goes to `refuse(comm_id,
    msg_id, why)`, which answers the client; anything else is logged in one
    line. Nothing is printed and no traceback is written.
    """
    try:
        refused = screen_message(kernel, msg)
    except Exception:  # a bug here must not stop the shell channel
        log.warning("could not screen a shell message", exc_info=True)
        refused = None
    if refused is not None:
        msg_type, why, content = refused
        if msg_type in ("comm_msg", "comm_close"):
            comm_id, msg_id = recover_ids(content)
            refuse(comm_id, msg_id, why)
        else:
            log.warning("refused a %s message unread: %s", msg_type, why)
        return None
    if subshell_id is not None:
        try:
            return reroute_comm_open(kernel, msg, subshell_id)
        except Exception:
            log.debug("could not reroute a message", exc_info=True)
    return msg



# ----- quiet dispatch of hub comm messages -------------------------------------------


def is_hub_comm_message(kernel: Any, msg: list[Any], hub_comm_ids: Any) -> bool:
    """True for a `comm_open` of our target, or a `comm_msg`/`comm_close` of a hub comm.

    Called on the hub's subshell thread for every message routed there (our
    comms, and the panel's widget comm, whose frontend waits for idle).
    """
    session = kernel.session
    _, frames = session.feed_identities(msg, copy=False)
    if len(frames) < 5:
        return False
    msg_type = _peek_type(_bytes(frames[1])[:4096])
    if msg_type not in _COMM_TYPES:
        return False
    try:
        content = session.unpack(_bytes(frames[4]))  # bounded by `screen_message` already
    except Exception:
        return False
    if not isinstance(content, dict):
        return False
    if msg_type == b"comm_open":
        return content.get("target_name") == COMM_TARGET
    return content.get("comm_id") in hub_comm_ids


async def dispatch_quietly(kernel: Any, subshell_id: str, msg: list[Any]) -> None:
    """Run one hub comm message on the hub's subshell with no busy/idle status on iopub.

    ipykernel publishes a status pair for every shell message; for comm
    traffic that is two iopub messages per command on top of the ack, so five
    clients at full speed pushed iopub past jupyter_server's 1000/s and the
    socket's high-water mark, and acks were lost. Protocol clients never wait
    for an idle after a comm message (they wait for the ack), so the hub's
    comms do without it. `concurrent=True` is how ipykernel itself dispatches
    a comm message while a cell holds the lock: no status, no signal hooks.
    """
    parent = kernel.get_parent("shell")
    ident = kernel._get_shell_context_var(kernel._shell_parent_ident)
    try:
        await kernel.dispatch_shell(msg, subshell_id=subshell_id, concurrent=True)
    finally:
        kernel.set_parent(ident, parent, channel="shell")


# ----- the kernel's overrides of ipykernel's private shell steps ---------------------


class HubShellRouting:
    """Mixin for the kernel class (before `IPythonKernel`): its two overrides of private ipykernel methods.

    - `shell_channel_thread_main` runs on ipykernel's shell-channel thread:
      it refuses what must not be parsed (`route_shell_message`, answering a
      refused comm message through `_refuse_comm_msg`) and re-addresses our
      `comm_open` to the hub's subshell, so a panel opened during a long cell
      gets its snapshot at once;
    - `shell_main` runs on each shell's thread: hub comm messages on the hub's
      subshell go without the busy/idle status pair (`dispatch_quietly`); on
      the main shell, until the kernel has booted, it calls the kernel's
      `boot_soon` right after a `kernel_info_request` is answered (the boot's
      imports go on a thread, and later kernel_info requests are answered
      meanwhile), or `boot` before any other message is handled
      (`VTKernel.boot`: the kernel answers first).

    The kernel provides `hub_subshell_id` (None until `create_hub_subshell`
    succeeded), `_comm_senders` (the hub's comm ids), `_refuse_comm_msg`,
    `_booted`, `boot` and `boot_soon`.
    """

    hub_subshell_id: str | None
    _comm_senders: Any
    _booted: bool
    boot: Callable[[], None]
    boot_soon: Callable[[], None]
    _refuse_comm_msg: Callable[[str | None, Any, str], None]

    async def shell_channel_thread_main(self, msg: Any) -> None:
        routed = route_shell_message(self, msg, self.hub_subshell_id, self._refuse_comm_msg)
        if routed is not None:
            await super().shell_channel_thread_main(routed)  # type: ignore[misc]

    async def shell_main(self, subshell_id: str | None, msg: Any) -> None:
        if subshell_id is not None and subshell_id == self.hub_subshell_id and is_hub_comm_message(self, msg, self._comm_senders):
            await dispatch_quietly(self, subshell_id, msg)
            return
        info = False
        if subshell_id is None and not self._booted:
            info = _main_msg_type(self, msg) == b"kernel_info_request"
            if not info:
                self.boot()  # everything but kernel_info needs the engine
        await super().shell_main(subshell_id, msg)  # type: ignore[misc]
        if info:
            self.boot_soon()  # behind the reply: the frontend shows the kernel ready first
