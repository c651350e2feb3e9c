"""The session file format: versioned, checksummed JSON, and nothing else.

A session file is one JSON object::

    {"checksum": "sha256:<64 hex>",
     "document": {"clock": {...}, "connections": [...], "modules": {...}},
     "format": "vtkernel.session",
     "format_version": 1,
     "saved_at": 1714557785.25,
     "version": 41}

- `version` is the engine version the document had when saved; a kernel that
  opens the file continues from it, so versions never go back across
  restarts. `saved_at` is `time.time()` at save.
- `checksum` is the SHA-256 of the *canonical serialization* of every other
  field: `json.dumps(obj, sort_keys=True, separators=(",", ":"),
  ensure_ascii=True, allow_nan=False)`. It is a checksum over values, not
  bytes: the reader re-serializes what it parsed, so whitespace does not
  matter. The writer puts one module per line so that files diff well.
- Loading never executes or unpickles anything: the bytes go through
  `json.loads` (duplicate keys, NaN and Infinity refused), the checksum is
  checked, and the document is validated by
  `vtkernel.engine.apply.validate_document`, the rules every command follows.
  Every failure is one `VTError("session_invalid", ...)` line.

Migrating to `format_version` 2
-------------------------------
The checksum rule does not depend on the format version, so an old file is
verified as it was written, then upgraded step by step in memory:

1. bump `FORMAT_VERSION` to 2 and change `Encoder` to write the new shape;
2. write `def _migrate_1_to_2(payload: dict) -> dict` that returns the
   payload in the version-2 shape with `"format_version": 2` (pure: data in,
   data out, no I/O);
3. register it: `MIGRATIONS[1] = _migrate_1_to_2`;
4. keep a version-1 file in the tests and check that it still opens.

`decode` applies `MIGRATIONS[n]` for n = the file's version up to
`FORMAT_VERSION - 1`, then validates. A file newer than this vtkernel is
refused with `NewerFormatError` (a `session_invalid` that says to upgrade):
it is not corrupt, so recovery must not replace it with a backup.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
import re
import time
from collections.abc import Callable, Mapping
from itertools import compress
from typing import Any, NamedTuple

import immutables
from pydantic import ValidationError

from vtkernel.engine.apply import validate_document
from vtkernel.engine.document import Document, Module, Snapshot
from vtkernel.engine.schema import Registry
from vtkernel.protocol import VTError

FORMAT_TAG = "vtkernel.session"
FORMAT_VERSION = 1
MAX_FILE_BYTES = 256 << 20  # refuse absurd files before parsing them

Migration = Callable[[dict[str, Any]], dict[str, Any]]

# MIGRATIONS[n] upgrades a checksum-verified payload of format_version n to
# n + 1. Empty while version 1 is the only format; see the module docstring.
MIGRATIONS: dict[int, Migration] = {}

_FIELDS = frozenset({"format", "format_version", "version", "saved_at", "document", "checksum"})
_CHECKSUM_RE = re.compile(r"sha256:[0-9a-f]{64}")
_YIELD_EVERY = 64  # modules encoded in Python between two GIL releases (see Encoder)
_SLICE = 2048  # modules looked up in C between two GIL releases


class Decoded(NamedTuple):
    version: int
    saved_at: float
    document: Document


class NewerFormatError(VTError):
    """The file is valid as far as we can tell, but written by a newer vtkernel."""

    def __init__(self, message: str) -> None:
        super().__init__("session_invalid", message)


def canonical(obj: Any) -> bytes:
    """The canonical serialization the checksum is computed over."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def checksum_of(payload: Mapping[str, Any]) -> str:
    """`sha256:<hex>` of the canonical form of `payload` without its checksum field."""
    body = {k: v for k, v in payload.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(canonical(body)).hexdigest()


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------


class Encoder:
    """Writes snapshots as session files, re-encoding only the modules that changed.

    Modules are immutable and shared between versions, so the encoder keeps
    the last document's sorted names, modules and their canonical JSON, and
    finds changed modules by identity, in C (`map(operator.is_not, ...)`):
    saving a 10,000-module document after a few edits runs Python code only
    for the modules that changed. The work is done in slices with a GIL
    release between them, so a thread that needs the GIL (the engine) waits
    for one slice, not for the whole document.

    The cache is three flat lists, not per-module objects: lists of bytes are
    one object to the garbage collector, whereas thousands of long-lived
    tuples made CPython run full collections of 100+ ms that stall every
    thread.

    Owner: one thread at a time (the saver thread); not thread-safe.
    """

    def __init__(self) -> None:
        self._names: list[str] = []
        self._modules: list[Module] = []
        self._entries: list[bytes] = []  # canonical `"name":{...}` of each module

    def encode(self, version: int, doc: Document, saved_at: float | None = None) -> bytes:
        saved_at = time.time() if saved_at is None else saved_at
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise ValueError(f"version must be a non-negative integer, got {version!r}")
        entries = self._update(doc.modules)
        head = b'{"document":{"clock":' + canonical(doc.clock.to_json())
        head += b',"connections":' + canonical([{"src": s, "dst": d} for s, d in doc.sorted_connections()])
        tail = b',"format":%s,"format_version":%d,"saved_at":%s,"version":%d}' % (
            canonical(FORMAT_TAG),
            FORMAT_VERSION,
            canonical(float(saved_at)),
            version,
        )
        modules_json = b",".join(entries)
        # One big update: hashlib releases the GIL while it hashes large inputs.
        digest = hashlib.sha256(b"".join((head, b',"modules":{', modules_json, b"}}", tail))).hexdigest()
        checksum = b'{"checksum":"sha256:' + digest.encode("ascii") + b'",'
        # Same values, one module per line: readable and diff-friendly.
        return b"".join((checksum, head[1:], b',"modules":{\n', b",\n".join(entries), b"\n}}", tail, b"\n"))

    def _update(self, modules: immutables.Map[str, Module]) -> list[bytes]:
        names = self._names
        current = self._same_names(modules)
        if current is None:  # modules were added or removed: re-sort, reuse what we can
            old = dict(zip(self._names, zip(self._modules, self._entries, strict=True), strict=True))
            names = sorted(modules.keys())
            current = list(map(modules.__getitem__, names))
            entries = []
            for i, (name, module) in enumerate(zip(names, current, strict=True)):
                hit = old.get(name)
                entries.append(hit[1] if hit is not None and hit[0] is module else _module_entry(name, module))
                if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                    time.sleep(0)
        else:
            entries = self._entries
            changed = list(compress(range(len(names)), map(operator.is_not, current, self._modules)))
            for i, at in enumerate(changed):
                entries[at] = _module_entry(names[at], current[at])
                if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                    time.sleep(0)
        self._names, self._modules, self._entries = names, current, entries
        return entries

    def _same_names(self, modules: immutables.Map[str, Module]) -> list[Module] | None:
        """The modules in our sorted name order if the set of names is unchanged, else None."""
        names = self._names
        if len(modules) != len(names):
            return None
        current: list[Module] = []
        get = modules.__getitem__
        try:
            for at in range(0, len(names), _SLICE):
                current.extend(map(get, names[at : at + _SLICE]))  # in C; KeyError if a name is gone
                time.sleep(0)
        except KeyError:
            return None
        return current


def _module_entry(name: str, module: Module) -> bytes:
    return canonical(name) + b":" + canonical(module.to_json())


def encode(snapshot: Snapshot, saved_at: float | None = None) -> bytes:
    """The session file for `snapshot` (its version and document)."""
    return Encoder().encode(snapshot.version, snapshot.doc, saved_at)


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------


def _invalid(message: str) -> VTError:
    return VTError("session_invalid", message)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def parse(data: bytes) -> dict[str, Any]:
    """Bytes to the top-level JSON object, or session_invalid. Nothing else is interpreted."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("session data must be bytes")
    if len(data) > MAX_FILE_BYTES:
        raise _invalid(f"file is {len(data)} bytes, more than the {MAX_FILE_BYTES >> 20} MiB a session may have")
    if not data.strip():
        raise _invalid("file is empty")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"not a session file: not UTF-8 text (byte {exc.start}); session files are JSON") from None
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        # An unterminated string runs to the end of the text, so it also means "cut short".
        cut = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        hint = "; the file ends early (truncated?)" if cut else ""
        raise _invalid(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}){hint}") from None
    except ValueError as exc:  # duplicate key, NaN, a number too long to convert
        raise _invalid(f"not a valid session file: {exc}") from None
    except RecursionError:
        raise _invalid("not a valid session file: JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise _invalid("not a session file: expected a JSON object at the top level")
    return obj


def decode(
    data: bytes,
    registry: Registry,
    *,
    migrations: Mapping[int, Migration] | None = None,
    current: int = FORMAT_VERSION,
) -> Decoded:
    """Validate a session file and return `(version, saved_at, document)`.

    Raises `VTError("session_invalid", ...)` (or its subclass `NewerFormatError`)
    with one line that says what is wrong. `migrations` and `current` exist for
    tests of the migration path; callers use the defaults.
    """
    payload = parse(data)
    if payload.get("format") != FORMAT_TAG:
        raise _invalid(f"not a session file: format is {_show(payload.get('format'))}, expected {FORMAT_TAG!r}")
    fv = payload.get("format_version")
    if isinstance(fv, bool) or not isinstance(fv, int) or fv < 1:
        raise _invalid(f"bad format_version {_show(fv)}: expected an integer from 1")
    checksum = payload.get("checksum")
    if not isinstance(checksum, str) or not _CHECKSUM_RE.fullmatch(checksum):
        raise _invalid("missing or malformed checksum: expected 'sha256:' and 64 hex digits")
    try:
        actual = checksum_of(payload)
    except (ValueError, TypeError, RecursionError) as exc:
        raise _invalid(f"cannot verify the checksum: {exc}") from None
    if actual != checksum:
        raise _invalid("checksum mismatch: the file was damaged or edited after it was saved")
    # Only after the checksum: a damaged format_version must read as corrupt (and be
    # recovered from a backup), not as "newer" (which recovery leaves alone).
    if fv > current:
        raise NewerFormatError(
            f"written by a newer vtkernel (format_version {fv}; this one reads up to {current}): upgrade vtkernel to open it"
        )
    migrations = MIGRATIONS if migrations is None else migrations
    while fv < current:
        step = migrations.get(fv)
        if step is None:
            raise _invalid(f"format_version {fv} cannot be upgraded: no migration to {fv + 1}")
        payload = step(dict(payload))
        fv += 1
        if payload.get("format_version") != fv:
            raise _invalid(f"migration from format_version {fv - 1} did not produce version {fv}")
    extra = set(payload) - _FIELDS
    if extra:
        raise _invalid(f"unknown field {sorted(extra)[0]!r} at the top level")
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise _invalid(f"version must be a non-negative integer, got {_show(version)}")
    saved_at = payload.get("saved_at")
    if isinstance(saved_at, bool) or not isinstance(saved_at, (int, float)) or not math.isfinite(saved_at):
        raise _invalid(f"saved_at must be a number (seconds since the epoch), got {_show(saved_at)}")
    document = payload.get("document")
    if not isinstance(document, dict):
        raise _invalid("document must be a JSON object")
    try:
        doc = validate_document(document, registry)
    except VTError as exc:
        raise _invalid(exc.message) from None
    except Exception as exc:
        # validate_document should only raise VTError. Whatever a hostile file
        # provokes, the user still gets one session_invalid line, not a traceback.
        raise _invalid(f"invalid document: {_one_line(exc)}") from None
    return Decoded(version, float(saved_at), doc)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):  # e.g. a pydantic model built from a bad clock value
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg'].removeprefix('Value error, ')}" if where else err["msg"]
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = [
    "FORMAT_TAG",
    "FORMAT_VERSION",
    "MIGRATIONS",
    "Decoded",
    "Encoder",
    "NewerFormatError",
    "canonical",
    "checksum_of",
    "decode",
    "encode",
    "parse",
]
