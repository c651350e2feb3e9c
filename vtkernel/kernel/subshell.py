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
  that it, too, runs on the subshell (re-signed with the session key).

These are pinned to `ipykernel>=7.4,<7.5`; `tests/kernel/test_subshell_glue.py`
fails loudly if any of them stops working.

Thread ownership: `create_hub_subshell` is called on the kernel's main
thread after start; `reroute_comm_open` runs on the shell-channel thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import threading
from typing import Any

import zmq

from vtkernel.protocol import COMM_TARGET


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


def reroute_comm_open(kernel: Any, msg: list[Any], subshell_id: str) -> list[Any]:
    """Return `msg` with a `comm_open` for the hub's target re-addressed to its subshell.

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
    if not isinstance(header, dict) or header.get("msg_type") != "comm_open" or header.get("subshell_id"):
        return msg
    content = session.unpack(_bytes(frames[4]))
    if not isinstance(content, dict) or content.get("target_name") != COMM_TARGET:
        return msg
    if session.auth is not None:
        expected = session.sign([_bytes(f) for f in frames[1:5]])
        if not hmac.compare_digest(expected, _bytes(frames[0])):
            return msg  # let ipykernel reject it as it would any badly signed message
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
