"""The engine: immutable versioned state, pure updates, the command queue and the engine thread.

Nothing in this package imports Jupyter (checked by import-linter).
"""

from vtkernel.engine.apply import EditState, LoadDocument, apply, validate_document
from vtkernel.engine.document import Change, Document, Snapshot
from vtkernel.engine.engine import Engine, Mailbox, Outcome, Signal
from vtkernel.engine.schema import ModuleType, ParamSpec, Registry, default_registry

__all__ = [
    "Change",
    "Document",
    "EditState",
    "Engine",
    "LoadDocument",
    "Mailbox",
    "ModuleType",
    "Outcome",
    "ParamSpec",
    "Registry",
    "Signal",
    "Snapshot",
    "apply",
    "default_registry",
    "validate_document",
]
