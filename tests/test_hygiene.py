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
import re
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


# What a test module must not contain to be left out of the portable pass without a reason:
# the engine, runtime or VT (the waker), a kernel (all four twins), sessions (the lock), the hand-off.
REACHES_A_TWIN = (
    r"\bEngine\(",
    r"\bRuntime\(",
    r"\bVT\(",
    r"\bstart_kernel\b",
    r"\bKernelManager\b",
    r"\bKernel\b",
    r"\bshared_kernel\b",
    r"\bclient_factory\b",
    r"\bvtkernel\.session\b",
    r"\bvtkernel\.engine\.platform\b",
    r"\bvtkernel\.handoff\b",
    r"\bprespawn\b",
    r"\bvtkernel\.kernel\b",
    r"kernel_name=",  # a notebook or connection file run on the vtkernel kernelspec
    r"\"-m\", \"vtkernel\"",  # `python -m vtkernel`, the kernel's own launch line
)


def test_what_the_portable_pass_leaves_out_cannot_reach_a_portable_twin() -> None:
    """`scripts/test.sh` runs the suite again with the portable twins forced, less `PLATFORM_NEUTRAL`."""
    from tests.conftest import PLATFORM_NEUTRAL, ROOT

    problems = []
    for name, reason in PLATFORM_NEUTRAL.items():
        path = ROOT / name
        if not path.is_file():
            problems.append(f"{name}: no such test module")
            continue
        text = path.read_text()
        if path == Path(__file__):  # this check names every token it looks for
            continue
        found = [token for token in REACHES_A_TWIN if re.search(token, text)]
        if reason is None and found:
            problems.append(f"{name} names {found}: give its reason, or take it off the list")
        if reason is not None and len(reason) < 40:
            problems.append(f"{name}: say where its twin is tested in the portable pass")
    assert not problems, "\n".join(problems)
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert '-m "not browser and not platform_neutral"' in script
