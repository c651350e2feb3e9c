"""The GUI panel (`vt.panel()`): an anywidget whose JavaScript is a protocol-v1 client.

The widget itself knows nothing about the engine or the hub. Its front end
(`static/*.js`, one ES module per part, joined by `bundle()`; see `static/panel.js`) keeps a mirror of the document and speaks protocol v1
(SPEC §5) over the widget's custom messages; whoever creates the widget
connects those messages to a hub client (in the kernel: `vtkernel.kernel.panel`).

Wire format, both directions, over `model.send` / `msg:custom`:

- front end -> kernel: protocol-v1 client messages (`command`, `text`,
  `resync`, `get_script`, `run_script`), plus one panel message,
  `{"type": "hello", "hello": {...}}`, the equivalent of a comm's open data
  (sent when a front end starts, again by each new view of the same widget
  in another window, and repeated until the first snapshot arrives);
- kernel -> front end: protocol-v1 kernel messages, unchanged.

Three parts, with DOM hooks fixed by SPEC §4: the editor shell (each param's
input carries `data-vt-param="MODULE.PARAM"`), the command shell (its input
carries `data-vt-command`) and the code shell (the script view carries
`data-vt-script`). The root element carries `data-vt-version`, the version
its mirror holds.

Thread ownership: the widget is created on the kernel's main thread;
`deliver` may be called from any thread (comm sends are thread-safe), and
`on_client_message` callbacks run on whatever thread handles the widget's
comm messages (the hub's subshell thread, once pinned).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

STATIC = Path(__file__).parent / "static"
PANEL_MESSAGE_TYPES = ("hello",)  # messages for the relay itself; everything else is protocol v1


# The front end's modules, each a plain ES module (node can import them one by one), in an order
# where every module comes after the ones it imports. `bundle()` joins them into the single ES
# module anywidget takes: no build step, no bundler.
MODULES = (
    "patch.js",
    "dom.js",
    "client.js",
    "controls.js",
    "pictures.js",
    "editor.js",
    "command_shell.js",
    "code_shell.js",
    "panel.js",
)
_IMPORT = re.compile(r'^import \{([^}]*)\} from "\./([\w.]+)";\n', re.M)
_EXPORT = re.compile(r"^export (?=(?:async )?(?:function|class|const|let) )", re.M)
_TOP_NAME = re.compile(r"^(?:export )?(?:async )?(?:function\*?|class|const|let)\s+([A-Za-z_$][\w$]*)", re.M)


def bundle(directory: Path = STATIC, modules: tuple[str, ...] = MODULES) -> str:
    """One ES module from the front end's modules: their own imports dropped, their exports made local.

    Raises ValueError if a module imports one that does not come before it, imports a name that
    module does not define, or two modules define the same top-level name (they share one scope).
    """
    parts: list[str] = []
    owner: dict[str, str] = {}
    for name in modules:
        text = (directory / name).read_text(encoding="utf-8")
        for match in _IMPORT.finditer(text):
            source = match.group(2)
            if source not in modules[: modules.index(name)]:
                raise ValueError(f"{name} imports ./{source}, which is not an earlier module in MODULES")
            for imported in (n.strip() for n in match.group(1).split(",") if n.strip()):
                if owner.get(imported) != source:
                    raise ValueError(f"{name} imports {imported} from ./{source}, which does not define it")
        for top in _TOP_NAME.findall(text):
            if top in owner:
                raise ValueError(f"{top} is defined by both {owner[top]} and {name}")
            owner[top] = name
        body = _EXPORT.sub("", _IMPORT.sub("", text))
        if name != modules[-1] and "export default" in body:
            raise ValueError(f"{name}: only the last module may have a default export")
        parts.append(f"// ----- {name}\n{body}")
    return "\n".join(parts)


class Panel(anywidget.AnyWidget):  # type: ignore[misc]
    """The editor, command and code shells together. Display it (it is a widget).

    Created on the kernel's main thread; `deliver` from any thread; client-message callbacks run
    on the thread that handles the widget's comm (the hub's, once the relay pins it).
    """

    _esm = bundle()
    _css = (STATIC / "panel.css").read_text(encoding="utf-8")

    # Lets every view of this widget in one browser window share one client (see panel.js).
    panel_id = traitlets.Unicode().tag(sync=True)
    title = traitlets.Unicode("vtkernel").tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("panel_id", uuid.uuid4().hex)
        super().__init__(**kwargs)
        self._client_callbacks: list[Callable[[dict[str, Any]], None]] = []
        self.on_msg(self._on_custom)

    def deliver(self, msg: dict[str, Any]) -> None:
        """Send one kernel->client protocol message to every front end of this widget."""
        self.send(msg)

    def on_client_message(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call `callback(msg)` for each message a front end sends (hello or protocol v1)."""
        self._client_callbacks.append(callback)

    def _on_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # anywidget's own RPC ("kind": "anywidget-command") shares the channel: not ours.
        if not isinstance(content, dict) or "kind" in content:
            return
        for callback in list(self._client_callbacks):
            callback(content)

    def __repr__(self) -> str:
        return "<vtkernel panel: display it in a notebook to see the editor, command and code shells>"
