"""The runtime: the room beside the engine that hosts its scheduler process.

`Runtime` (`host.py`) spawns the scheduler child
(`vtkernel.engine.timing.scheduler`), feeds it the engine's history as
O(change) JSON patches, reads back its telemetry, recorded events and
reports, and keeps it alive (the status-page monitor, restarts, a warm
spare). The child it is handed by the early spawn, and each one it starts,
is a `vtkernel.handoff.Started`.

It imports the engine and never Jupyter, the kernel, sessions, live coding,
shells or the test helpers; the engine never imports it (import-linter
contracts).
"""

from vtkernel.runtime.host import Runtime

__all__ = ["Runtime"]
