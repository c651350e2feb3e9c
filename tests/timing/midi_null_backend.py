"""A mido backend with one output port that sends nowhere and notes when each message left.

The scheduler process uses it when `MIDO_BACKEND=tests.timing.midi_null_backend`
(this machine has no MIDI port and no rtmidi). With `VT_MIDI_LOG=PATH`, each
`send` appends `monotonic_time status data1 data2` to PATH (flushed per line,
so another process can read it while it plays). Used by the MIDI timing test
and `benchmarks/bench_timing.py`, which time the send calls.
"""

from __future__ import annotations

import os
import time
from typing import Any

NAME = "vt null"


def get_output_names(**kwargs: Any) -> list[str]:
    return [NAME]


def get_input_names(**kwargs: Any) -> list[str]:
    return []


def get_ioport_names(**kwargs: Any) -> list[str]:
    return []


def get_api_names() -> list[str]:
    return ["null"]


class Output:
    """mido's port interface, as much as the scheduler uses."""

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        self.name = name or NAME
        self.closed = False
        path = os.environ.get("VT_MIDI_LOG")
        self._log = open(path, "a", buffering=1) if path else None

    def send(self, message: Any) -> None:
        t = time.monotonic()
        if self._log is not None:
            self._log.write(f"{t!r} {' '.join(str(b) for b in message.bytes())}\n")

    def reset(self) -> None:
        pass

    def panic(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
