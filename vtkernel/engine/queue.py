"""Lock-free many-producer / single-consumer command queue, and wake-ups.

Producers append to a `collections.deque` (one atomic C call under the GIL)
and write a waker (an `eventfd` on Linux, a socket pair on macOS and
Windows: `vtkernel.engine.platform`) only when the consumer may be asleep;
the consumer blocks in `select` on it (no polling) and drains the deque. Neither
side takes a lock.

Why no lost wake-up: the consumer clears `_wake_pending` *before* it drains,
so an item appended after the drain's last look finds the flag clear and
writes the eventfd; an item appended before the clear is seen by the drain.
Two producers may both write: a spurious wake-up is harmless.
"""

from __future__ import annotations

import select
from collections import deque
from typing import Any, Generic, TypeVar

from vtkernel.engine.platform import SelfPipe

T = TypeVar("T")


class Waker:
    """A wake-up one thread sleeps on and any thread can set: an eventfd on Linux, a socket pair elsewhere.

    The choice is made once (`vtkernel.engine.platform.SelfPipe`); both are
    waited on with `select`, so nothing polls on any system.
    Owner: the sleeping thread calls `wait`/`clear`; any thread calls `wake`.
    """

    def __init__(self) -> None:
        self._pipe = SelfPipe()
        self.fd = self._pipe.fileno()

    def wake(self) -> None:
        self._pipe.wake()

    def clear(self) -> None:
        self._pipe.clear()

    def wait(self, timeout: float | None) -> bool:
        """Sleep until woken or `timeout` seconds pass; True if woken."""
        if timeout is not None and timeout < 0:
            timeout = 0
        ready, _, _ = select.select([self.fd], [], [], timeout)
        return bool(ready)

    def close(self) -> None:
        self._pipe.close()


class CommandQueue(Generic[T]):
    """MPSC queue. Any thread may `put`; only the consumer thread calls `drain` and `wait`."""

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._wake_pending = False
        self.waker = Waker()

    def put(self, item: T) -> None:
        self._items.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            self.waker.wake()

    def drain(self, limit: int) -> list[T]:
        """Pop up to `limit` items in FIFO order (consumer thread only)."""
        self._wake_pending = False
        items = self._items
        out: list[T] = []
        pop = items.popleft
        try:
            for _ in range(limit):
                out.append(pop())
        except IndexError:
            pass
        return out

    def wait(self, timeout: float | None) -> None:
        """Sleep until an item may be waiting or `timeout` passes (consumer thread only)."""
        if self._items:
            return
        if self.waker.wait(timeout):
            self.waker.clear()

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        self.waker.close()


def drain_all(q: CommandQueue[Any]) -> list[Any]:
    return q.drain(1 << 30)
