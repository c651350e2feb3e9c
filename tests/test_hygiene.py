"""CI guard: no test sleeps and hopes that a cell it started is running (issue 13).

A test that starts a cell without waiting (`kc.execute(...)`, which returns
at once) and then calls `time.sleep` before asserting passes vacuously if the
cell has not started yet. Such tests must wait for the kernel's `busy`
status or a marker the cell writes (`Kernel.start_cell` in tests/conftest.py
does the latter).

The lint reads every test module's AST. In each function, statements are
taken in source order; `<...>kc.execute(...)` marks a cell as running, and
`get_shell_msg`, `finish_cell`, `start_cell` or `execute_interactive` end that.
A `time.sleep(...)` or `sleep(...)` while a cell is running is a violation,
unless it sits in a loop: a loop that sleeps between checks of a condition
(a marker file, a deadline) is waiting for something, not hoping.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ENDS_A_RUNNING_CELL = {"get_shell_msg", "finish_cell", "start_cell", "execute_interactive", "wait_busy"}


def _calls_in_order(node: ast.AST) -> Iterator[ast.Call]:
    """Every call under `node`, in source order (ast.walk is breadth-first, not source order)."""
    calls = [n for n in ast.walk(node) if isinstance(n, ast.Call)]
    yield from sorted(calls, key=lambda c: (c.lineno, c.col_offset))


def _name(func: ast.expr) -> tuple[str | None, str | None]:
    """(owner, attribute) of a call's function: `k.kc.execute` -> ('kc', 'execute'), `sleep` -> (None, 'sleep')."""
    if isinstance(func, ast.Attribute):
        owner = func.value
        owner_name = owner.attr if isinstance(owner, ast.Attribute) else owner.id if isinstance(owner, ast.Name) else None
        return owner_name, func.attr
    if isinstance(func, ast.Name):
        return None, func.id
    return None, None


def sleeps_while_a_cell_runs(source: str, filename: str = "<test>") -> list[str]:
    """`file:line` of every sleep that follows a started, unfinished cell in the same function."""
    found = []
    for fn in ast.walk(ast.parse(source, filename)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        running_since: int | None = None
        polling = {id(c) for loop in ast.walk(fn) if isinstance(loop, (ast.While, ast.For)) for c in ast.walk(loop)}
        for call in _calls_in_order(fn):
            owner, attr = _name(call.func)
            if attr == "execute" and owner is not None and owner.endswith("kc"):
                running_since = call.lineno
            elif attr in ENDS_A_RUNNING_CELL:
                running_since = None
            elif attr == "sleep" and owner in (None, "time") and running_since is not None and id(call) not in polling:
                found.append(f"{filename}:{call.lineno} sleeps after the cell started on line {running_since}")
    return found


def test_the_lint_catches_sleep_and_hope() -> None:
    bad = (
        "def test_x(kernel):\n"
        "    kernel.kc.execute('import time; time.sleep(6)')\n"
        "    time.sleep(0.5)\n"
        "    assert kernel.client().call({})['type'] == 'ack'\n"
    )
    good = (
        "def test_y(kernel):\n"
        "    cell = kernel.start_cell('import time; time.sleep(6)')\n"
        "    assert kernel.client().call({})['type'] == 'ack'\n"
        "    kernel.finish_cell(cell)\n"
        "    time.sleep(0.1)\n"
        "def test_z(kernel, marker):\n"
        "    kernel.kc.execute('...')\n"
        "    while not marker.exists():\n"
        "        time.sleep(0.01)\n"
    )
    assert sleeps_while_a_cell_runs(bad) == ["<test>:3 sleeps after the cell started on line 2"]
    assert sleeps_while_a_cell_runs(good) == []


def test_no_test_sleeps_and_hopes_that_a_cell_is_running() -> None:
    problems = []
    for path in sorted(TESTS.rglob("*.py")):
        problems += sleeps_while_a_cell_runs(path.read_text(), str(path.relative_to(TESTS.parent)))
    assert not problems, "wait for the cell's busy status or a marker it writes (Kernel.start_cell):\n" + "\n".join(problems)
