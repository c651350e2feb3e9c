"""The panel relay without a browser: a jupyter_client plays the widget's front end.

It sends exactly what `panel.js` sends over the widget's comm
(`{"method": "custom", "content": ...}`) and reads what the kernel sends back,
so the relay's subscription, routing to the hub's subshell and closing are
checked in seconds.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Kernel, own_client

HELLO = {"type": "hello", "hello": {"protocol": 1, "shell": "editor", "telemetry": False, "script": True}}


class FakeFrontEnd:
    """The widget's front end, over its own jupyter_client connection."""

    def __init__(self, k: Kernel, comm_id: str) -> None:
        self.kc = own_client(k.connection_file)
        self.comm_id = comm_id
        self.received: list[dict[str, Any]] = []

    def send(self, content: dict[str, Any]) -> None:
        data = {"method": "custom", "content": content}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", {"comm_id": self.comm_id, "data": data}))

    def next(self, kind: str, timeout: float = 5, **match: Any) -> dict[str, Any]:
        for m in self.received:
            if m.get("type") == kind and all(m.get(k) == v for k, v in match.items()):
                self.received.remove(m)
                return m
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            content = msg["content"]
            if msg["msg_type"] != "comm_msg" or content.get("comm_id") != self.comm_id:
                continue
            data = content["data"]
            if data.get("method") != "custom":
                continue
            got = data["content"]
            if got.get("type") == kind and all(got.get(k) == v for k, v in match.items()):
                return dict(got)
            self.received.append(got)
        raise AssertionError(f"no {kind} {match} from the panel relay; got {[m.get('type') for m in self.received]}")

    def hello(self) -> dict[str, Any]:
        """Say hello until the first snapshot arrives (iopub may miss the first one)."""
        for _ in range(20):
            self.send(HELLO)
            try:
                return self.next("snapshot", timeout=0.5)
            except AssertionError:
                continue
        raise AssertionError("no snapshot")

    def close(self) -> None:
        self.kc.stop_channels()


@pytest.fixture
def front(shared_kernel: Kernel) -> Iterator[FakeFrontEnd]:
    out = shared_kernel.ok(
        'vt.module("lfo1", "lfo", rate=2.0)\n'
        "p = vt.panel()\n"
        "print(p.model_id)"
    )
    fe = FakeFrontEnd(shared_kernel, out.strip())
    yield fe
    fe.close()


def hub_clients(k: Kernel) -> int:
    return int(k.ok("print(len(get_ipython().kernel.hub.clients))"))


def test_vt_panel_returns_a_widget_with_the_dom_hooks_in_its_front_end(shared_kernel: Kernel) -> None:
    out = shared_kernel.ok(
        "p = vt.panel()\n"
        "print(type(p).__name__, 'data-vt-param' in p._esm, 'data-vt-command' in p._esm, 'data-vt-script' in p._esm)"
    )
    assert out.split() == ["Panel", "True", "True", "True"]


def test_hello_subscribes_the_panel_like_any_client(front: FakeFrontEnd, shared_kernel: Kernel) -> None:
    snap = front.hello()
    assert snap["state"]["modules"]["lfo1"]["params"]["rate"] == 2.0
    assert "lfo" in front.next("schema")["types"]
    assert "vt.module(" in front.next("script")["text"]

    front.send(
        {
            "type": "command",
            "id": "w-1",
            "command": {"op": "set_param", "module": "lfo1", "param": "rate", "value": 3.0},
        }
    )
    delta = front.next("delta")
    assert delta["base"] == snap["version"] and delta["origin"] == "editor"
    assert front.next("ack", id="w-1")["version"] == delta["version"]
    front.send({"type": "text", "id": "w-2", "text": "set lfo1.rate -1"})
    assert front.next("error", id="w-2")["error"]["code"] == "invalid_value"


def test_a_second_window_gets_the_schema_and_a_snapshot_again(front: FakeFrontEnd) -> None:
    front.hello()
    front.next("schema")
    front.received.clear()
    front.send(HELLO)
    assert front.next("schema")["types"]
    assert front.next("snapshot")["version"] >= 0


def test_the_relay_is_served_while_a_cell_runs(front: FakeFrontEnd, shared_kernel: Kernel) -> None:
    front.hello()
    msg_id = shared_kernel.start_cell("import time; time.sleep(3)")
    try:
        start = time.monotonic()
        front.send(
            {
                "type": "command",
                "id": "busy",
                "command": {"op": "set_param", "module": "lfo1", "param": "rate", "value": 4.0},
            }
        )
        front.next("ack", id="busy", timeout=2)
        assert time.monotonic() - start < 1.0
    finally:
        assert shared_kernel.finish_cell(msg_id)["status"] == "ok"


def test_closing_the_widget_unsubscribes_it(front: FakeFrontEnd, shared_kernel: Kernel) -> None:
    front.hello()
    before = hub_clients(shared_kernel)
    shared_kernel.ok("p.close()")
    deadline = time.monotonic() + 5
    while hub_clients(shared_kernel) != before - 1:
        assert time.monotonic() < deadline, "the hub still serves a closed panel"


def test_messages_before_hello_get_an_error(front: FakeFrontEnd) -> None:
    for _ in range(20):  # iopub may miss the first reply (slow joiner)
        front.send({"type": "text", "id": "early", "text": "get lfo1.rate"})
        try:
            error = front.next("error", id="early", timeout=0.5)
            break
        except AssertionError:
            continue
    assert error["error"]["code"] == "bad_message"
