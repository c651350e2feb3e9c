"""How module classes reach the scheduler process.

A class that the child can import (a built-in, an installed plugin) goes by
reference: the child imports it. A class defined in a notebook cell, in a
watched file or inside a function cannot be imported there, so it goes by
value: cloudpickle sends its code (methods' code objects, class attributes,
and the globals they use), the standard way to ship interactively defined
code to worker processes (dask, ray, ipyparallel do the same). Modules the
methods use (`math`, `numpy`) go by reference and are imported by the child.

Redefining a class in a cell and registering it again sends the new class;
the scheduler swaps live instances between two ticks, and the params stay in
the document, so nothing is lost.
"""

from __future__ import annotations

import importlib.util
import pickle
import sys
from typing import Any

from vtkernel.engine.schema import ModuleType


class ShippingError(TypeError):
    """A module class cannot be sent to the scheduler process."""


def _importable(module_name: str) -> bool:
    if module_name == "__main__" or module_name not in sys.modules:
        return False
    module = sys.modules[module_name]
    if getattr(module, "__spec__", None) is None or getattr(module, "__file__", None) is None:
        return False
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def ship_class(cls: type[ModuleType]) -> bytes:
    """Serialize a module class for the scheduler; raise ShippingError with one clear line."""
    try:
        import cloudpickle
    except ImportError:
        raise ShippingError(
            "sending module classes to the scheduler needs cloudpickle: pip install cloudpickle"
        ) from None
    module_name = cls.__module__
    by_value = not _importable(module_name)
    registered = False
    if by_value and module_name in sys.modules and module_name != "__main__":
        # A module that exists only in this process (e.g. a watched file run
        # under its own name): ship its classes by value.
        cloudpickle.register_pickle_by_value(sys.modules[module_name])
        registered = True
    try:
        return bytes(cloudpickle.dumps(cls, protocol=pickle.HIGHEST_PROTOCOL))
    except Exception as exc:
        raise ShippingError(f"module type {cls.type_name!r} cannot be sent to the scheduler process: {exc}") from None
    finally:
        if registered:
            cloudpickle.unregister_pickle_by_value(sys.modules[module_name])


def load_class(payload: bytes) -> Any:
    """The class back from `ship_class` (in the scheduler)."""
    return pickle.loads(payload)
