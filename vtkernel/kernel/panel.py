"""The panel relay: subscribes a GUI panel widget to the hub like any other client.

`vt.panel()` (the `panel` service) creates a `shells.panel.Panel` on the
kernel's main thread and attaches a `PanelRelay`:

- the widget's comm is pinned to the hub's subshell, so its messages are
  served while a cell runs (ipykernel routes `comm_msg`/`comm_close` by
  `_reply_subshell_for`);
- the front end's `hello` subscribes the relay to the hub (`Hub.add_client`),
  exactly what a comm's `comm_open` does for other shells; a later `hello`
  (another window showing the same widget) gets the schema again and a
  resync, so every window converges on the same snapshot;
- every other front-end message goes to `Hub.handle`, which validates it;
  the hub's replies go back through `Panel.deliver`;
- closing the widget (from Python or from the front end) unsubscribes it.

Thread ownership: `PanelRelay.__init__` runs on the main thread; every other
method runs on the hub loop's thread (`kernel.on_hub`), which is also the
thread the pinned comm's messages arrive on.
"""

from __future__ import annotations

import logging
from typing import Any

from vtkernel.kernel.hub import internal_error
from vtkernel.kernel.subshell import pin_to_subshell
from vtkernel.protocol import VTError, error_msg

log = logging.getLogger("vtkernel")


class PanelRelay:
    """The hub's `Sender` for one panel widget, and the path of its front-end messages to the hub.

    Owner: the hub loop's thread (`send`, `receive`, `detach`); only `__init__` runs on the main thread.
    """

    # The widget comm's messages keep ipykernel's busy/idle pair (a browser frontend disposes
    # each message's future on idle): the hub counts those two against its iopub budget.
    iopub_per_message = 2

    def __init__(self, kernel: Any, panel: Any) -> None:
        self.kernel = kernel
        self.panel = panel
        self.client: Any = None
        self.schema: dict[str, Any] | None = None
        self.closed = False
        comm = panel.comm
        if getattr(kernel, "hub_subshell_id", None) is not None:
            pin_to_subshell(comm, kernel.hub_subshell_id)
        comm.on_close(lambda _msg: kernel.on_hub(self.detach))
        panel.observe(self._comm_changed, names="comm")
        panel.on_client_message(lambda msg: kernel.on_hub(lambda: self.receive(msg)))

    # ----- the hub's Sender (hub thread) -------------------------------------------

    def send(self, msg: dict[str, Any]) -> None:
        if msg.get("type") == "schema":
            self.schema = msg
        if self.closed or self.panel.comm is None:
            raise ConnectionError("the panel is closed")  # the hub drops a client whose send fails
        self.panel.deliver(msg)

    # ----- from the front end (hub thread) -------------------------------------------

    def receive(self, msg: dict[str, Any]) -> None:
        hub = self.kernel.hub
        if self.closed or hub is None:
            return
        if msg.get("type") == "hello":
            self._hello(hub, msg.get("hello"))
        elif self.client is None:
            self.panel.deliver(error_msg(msg.get("id"), "bad_message", "the panel has not said hello yet"))
        else:
            hub.handle(self.client, msg)

    def _hello(self, hub: Any, hello: Any) -> None:
        if self.client is None or self.client.closed:
            try:
                self.client = hub.add_client(self, hello if isinstance(hello, dict) else {})
            except VTError as exc:
                self.panel.deliver(error_msg(None, exc.code, exc.message))
            except Exception as exc:  # a bug behind the hub: its traceback to the kernel log, one line to the panel
                log.exception("panel subscription failed")
                self.panel.deliver(error_msg(None, "internal_error", internal_error(exc).message))
            return
        if self.schema is not None:
            self.panel.deliver(self.schema)
        hub.handle(self.client, {"type": "resync"})

    # ----- closing ----------------------------------------------------------------

    def _comm_changed(self, change: dict[str, Any]) -> None:
        if change.get("new") is None:  # Panel.close() on any thread
            self.kernel.on_hub(self.detach)

    def detach(self) -> None:
        if self.closed:
            return
        self.closed = True
        hub = self.kernel.hub
        if hub is not None and self.client is not None:
            hub.remove_client(self.client)
        self.client = None


def make_panel(kernel: Any) -> Any:
    """Create a panel widget subscribed to `kernel`'s hub (main thread; the `panel` service)."""
    from shells.panel import Panel

    if kernel.hub is None:
        raise VTError("invalid_command", "the panel needs the kernel's hub, which has not started")
    panel = Panel()
    panel._vt_relay = PanelRelay(kernel, panel)  # lives as long as the widget
    return panel
