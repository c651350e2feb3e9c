"""What does the history ring cost in memory, thanks to structural sharing?

    python benchmarks/bench_history.py [--modules 10000] [--edits 1000]

A real `Engine` holds a 10,000-module document. We make 1000 single-param
edits (each to a different module, so each is its own version and its own
undo step) and measure with `tracemalloc` the bytes still allocated
afterwards: everything the engine retains for those 1000 versions.

- engine: the history ring (1000 snapshots) plus the undo stack, which
  holds the previous document of every edit;
- ring alone: the same run with `Engine(history=1)` subtracted, i.e. what
  keeping 1000 snapshots adds on top of undo;
- baselines: 1000 versions kept without sharing, as deep copies of the
  JSON document (`copy.deepcopy` of `Document.to_json()`), or as JSON texts.
  They are measured on a few copies and multiplied, since 1000 real copies
  would take gigabytes.

Prints a markdown table with the bytes per version and the ratio. Runs in
well under a minute.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import sys
import time
import tracemalloc
from pathlib import Path

import immutables

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vtkernel.engine import Engine, LoadDocument
from vtkernel.engine.document import Clock, Document, Module
from vtkernel.protocol import SetParam

SAMPLE_COPIES = 5  # baseline copies actually made; the result is scaled to the number of edits


def big_document(n: int) -> Document:
    modules = {
        f"m{i}": Module("lfo", immutables.Map({"rate": 1.0 + i % 500, "depth": 0.5, "shape": "sine"})) for i in range(n)
    }
    return Document(Clock(), immutables.Map(modules), immutables.Map())


def retained_by_engine(doc: Document, edits: int, history: int) -> tuple[int, int]:
    """Bytes the engine still holds after `edits` single-param edits; and the versions in its ring."""
    engine = Engine(history=history).start()
    try:
        outcome = engine.call(LoadDocument(doc, undoable=False, clear_history=True))
        assert outcome.error is None, outcome.error
        n = len(doc.modules)
        # Warm-up outside the measurement: first-use allocations (stats, caches) are not history.
        engine.call(SetParam(module="m0", param="depth", value=0.25))
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(edits):
            name = f"m{(i * 7919) % n}"  # a different module each time: no undo merging
            outcome = engine.call(SetParam(module=name, param="rate", value=2.0 + (i % 400) / 4))
            assert outcome.error is None, outcome.error
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        kept = len(engine.history())
        return after - before, kept
    finally:
        engine.stop()


def bytes_of(make: object, copies: int) -> int:
    """Bytes retained by `copies` results of `make()` (measured with tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = [make() for _ in range(copies)]  # type: ignore[operator]
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del kept
    return (after - before) // copies


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e6 else f"{n / 1e3:,.1f} KB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", type=int, default=10_000)
    parser.add_argument("--edits", type=int, default=1000)
    args = parser.parse_args()
    t0 = time.perf_counter()

    doc = big_document(args.modules)
    engine_bytes, kept = retained_by_engine(doc, args.edits, history=args.edits)
    no_ring_bytes, _ = retained_by_engine(doc, args.edits, history=1)
    ring_bytes = engine_bytes - no_ring_bytes

    as_json = doc.to_json()
    deep_copy = bytes_of(lambda: copy.deepcopy(as_json), SAMPLE_COPIES)
    as_text = bytes_of(lambda: json.dumps(as_json), SAMPLE_COPIES)
    deep_total = deep_copy * args.edits
    text_total = as_text * args.edits

    e = args.edits
    rows = [
        ("engine after the edits: history ring + undo stack (measured)", engine_bytes),
        (f"history ring alone (ring of {e} minus ring of 1, measured)", ring_bytes),
        (f"baseline: {e} deep copies of the JSON document ({SAMPLE_COPIES} measured, scaled)", deep_total),
        (f"baseline: {e} JSON texts of the document ({SAMPLE_COPIES} measured, scaled)", text_total),
    ]
    print(
        f"\n{args.modules:,} modules, {e} single-param edits, {kept} versions in the ring; "
        f"bytes still allocated afterwards (tracemalloc)\n"
    )
    print("| what | bytes | per version | deep copies ÷ this |")
    print("|---|---|---|---|")
    for label, total in rows:
        ratio = deep_total / total if total > 0 else float("inf")
        print(f"| {label} | {mb(total)} | {total / e:,.0f} B | {ratio:,.0f}x |")
    print(
        f"\nOne version costs what its change costs: about {engine_bytes / e / 1e3:.1f} KB for a "
        f"{args.modules:,}-module document (ring and undo together), against {mb(deep_copy)} for a deep copy. "
        f"Measured in {time.perf_counter() - t0:.0f} s."
    )


if __name__ == "__main__":
    main()
