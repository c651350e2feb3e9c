"""One router for the kernel's reports: watched-file runs, session saves, the timing process, module plugins.

A report is a line (or, for a file error, a summary line plus the user's
traceback) that the user must see even when nothing is looking:

- every report goes to the kernel log and to a short history per source
  (`history("file")`, for `%vt stats`, `vt.sync()` and tests);
- while a cell runs, it is printed in that cell (stderr for errors);
- between cells, a file's report goes to the output area of the cell that
  started watching it (JupyterLab shows it there at once), and every error,
  and every session, timing and plugin report, waits in `unseen` and is printed when
  the next cell starts. So `jupyter console`, papermill and nbclient, which
  never show a widget, still see a file's syntax error;
- every report is also sent to the protocol clients as a `report` message
  (docs/protocol.md): the terminal shell prints it and the panel logs it.

Owner: `say` may be called from any thread (the saver and the runtime's
reader call it); `show_unseen` and the output areas belong to the kernel's
main thread. The deques are safe to append from any thread.
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import Callable
from typing import Any, Literal, get_args

log = logging.getLogger("vtkernel")

Source = Literal["file", "session", "timing", "plugin"]
MAX_REPORT_CHARS = 4000  # a report sent to clients is cut here: one user's traceback must not flood everyone


class Reports:
    """See the module docstring."""

    def __init__(
        self,
        *,
        executing: Callable[[], bool],
        broadcast: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._executing = executing
        self.broadcast = broadcast
        self._history: dict[str, deque[tuple[str, bool]]] = {s: deque(maxlen=200) for s in get_args(Source)}
        self.counts: dict[str, int] = {s: 0 for s in self._history}
        self.unseen: deque[str] = deque(maxlen=20)
        self._areas: dict[str, Any] = {}  # watched path -> the Output area of the cell that started watching it

    # ----- any thread -----------------------------------------------------------

    def say(self, source: Source, text: str, *, error: bool = False, path: str | None = None) -> None:
        self._history[source].append((text, error))
        self.counts[source] += 1
        first = text.splitlines()[0] if text else ""
        (log.warning if error or source != "file" else log.info)("%s: %s", source, first)
        if self._executing():
            print(text if source == "file" else f"vt: {text}", file=sys.stderr if error or source != "file" else sys.stdout)
        else:
            area = self._areas.get(path) if path is not None else None
            if area is not None:
                area.report(text, error)
            if error or source != "file":
                self.unseen.append(text)
        self._send(source, text, error, path)

    def _send(self, source: Source, text: str, error: bool, path: str | None) -> None:
        broadcast = self.broadcast
        if broadcast is None:
            return
        if len(text) > MAX_REPORT_CHARS:
            text = text[: MAX_REPORT_CHARS - 1] + "…"
        msg: dict[str, Any] = {"type": "report", "source": source, "text": text, "error": error}
        if path is not None:
            msg["path"] = path
        try:
            broadcast(msg)
        except Exception:  # the hub is going away: the report is in the log and the history
            log.debug("could not send a report to the clients", exc_info=True)

    def history(self, source: Source) -> list[tuple[str, bool]]:
        return list(self._history[source])

    # ----- main thread ------------------------------------------------------------

    def show_unseen(self) -> None:
        """As a cell starts: print what was said while no cell ran."""
        while self.unseen:
            print(f"vt: {self.unseen.popleft()}", file=sys.stderr)

    def set_area(self, path: str, area: Any) -> None:
        """Later reports of the watched `path` also go to `area` (the watching cell's output)."""
        if area is None:
            self._areas.pop(path, None)
        else:
            self._areas[path] = area

    def forget_area(self, path: str) -> None:
        self._areas.pop(path, None)


__all__ = ["MAX_REPORT_CHARS", "Reports", "Source"]
