"""Live coding from a file (SPEC §6): watch a Python file, re-run what a save changed, reconcile with the engine.

- `analysis`: top-level statements, their defs and refs, and `plan` (what a save re-runs). Pure.
- `runner`: `LiveFile`, one file's namespace and its transactional runs against the engine.
- `watcher`: `LiveFiles`, watchdog plumbing that hands settled saves to the kernel's main thread.
"""

from vtkernel.live.analysis import Plan, Statement, plan, split_statements
from vtkernel.live.runner import Declarations, FileVT, LiveError, LiveFile, Ownership, RunResult
from vtkernel.live.watcher import LiveFiles

__all__ = [
    "Declarations",
    "FileVT",
    "LiveError",
    "LiveFile",
    "LiveFiles",
    "Ownership",
    "Plan",
    "RunResult",
    "Statement",
    "plan",
    "split_statements",
]
