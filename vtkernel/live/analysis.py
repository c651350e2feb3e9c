"""Static analysis of a watched file: its top-level statements, what each defines and reads, and what to re-run.

This is the pure half of live coding (no namespace, no engine, no threads),
in the style of marimo's dataflow: `split_statements` parses a file into
`Statement`s, and `plan(old, new)` decides which statements of the new text
run after a save.

Keys. A statement's key is `ast.unparse` of its node: the source the AST
stands for, without comments, layout or position (unparse round-trips the
AST, so equal keys mean equal trees). So a change to comments, blank lines
or the position of a statement in the file is not a change. The same text
feeds `symtable`, so the key costs nothing extra.

Defs and refs (computed with `symtable`, the compiler's own scoping):

- `defs`: names the statement binds at module level: assignments, `del`,
  `def`/`class` names, imports, walrus targets; also the base name of a
  subscript or attribute it assigns (`d["k"] = 1` changes `d`).
- `refs`: module-level names read while the statement runs: its
  expressions, decorators, default values, class bodies and comprehensions.
- `lazy_refs`: module-level names read only later, when a function or lambda
  it defines is called (their bodies look globals up at call time).
- `global_writes`: names that functions it defines bind through `global`.

The rules of `plan`:

1. Statements are matched old-to-new by key, in order (`difflib`). A matched
   statement is unchanged; it does not run again and what it declared stays
   declared.
2. Every unmatched new statement runs. An unmatched top-level `def` without
   decorators whose old counterpart (same name, unmatched) was also a plain
   `def` is *patched*: the existing function object gets the new code, so
   references held anywhere (a dict, a scheduled pattern) run the new body.
   Decorated defs and classes are re-executed instead (a new object; what
   others hold keeps the old one).
3. A name is *changed* when a statement that runs (or is patched) defines it
   (or calls a function of the file that binds it through `global`), and
   from the place of a removed statement on, for the names it defined. An
   unchanged statement runs again when it reads a name changed before it in
   the file (`refs`), and then the names it defines are changed too: the
   transitive closure, in file order.
4. A function whose body reads a changed name (`lazy_refs`) is not
   re-executed: its body already looks that name up when called, and
   re-executing the `def` would replace the object that others hold. But its
   behaviour changed, so its own name counts as changed and statements that
   call it at the top level run again. A patched function counts as changed
   for the same reason: `vt.module("s", "seq", steps=make_steps())` follows
   an edit of `make_steps`.
5. A `from m import *` that runs makes every later statement run.

What static analysis cannot see (`exec`, `globals()[...]`, mutation through
method calls such as `lst.append`) is not tracked; editing the statement
that needs to run again makes it run.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import gc
import symtable
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

_EAGER_SCOPES = frozenset({"listcomp", "setcomp", "dictcomp", "genexpr"})


@dataclass(frozen=True, slots=True)
class Statement:
    """One top-level statement of a file and its static facts. Immutable."""

    key: str
    node: ast.stmt = field(compare=False, repr=False)
    lineno: int  # first line, decorators included
    end_lineno: int
    defs: frozenset[str]
    refs: frozenset[str]
    lazy_refs: frozenset[str] = frozenset()
    global_writes: frozenset[str] = frozenset()
    name: str | None = None  # the bound name of a def or class
    patchable: bool = False  # a plain (undecorated) def: can be patched in place
    star_import: bool = False

    @property
    def writes(self) -> frozenset[str]:
        return self.defs | self.global_writes

    @property
    def is_def(self) -> bool:
        return isinstance(self.node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))


@dataclass(frozen=True, slots=True)
class Plan:
    """What a save runs, as indices into the new and old statement lists."""

    run: tuple[int, ...]  # new statements to execute, in file order (patches included)
    patch: dict[int, int]  # new index -> old index: a function patched in place
    matched: dict[int, int]  # new index -> old index: the same statement (it may still re-run)
    removed: tuple[int, ...]  # old statements with no counterpart
    stale: frozenset[str]  # names only removed statements defined: dropped from the namespace


Facts = dict[str, "Statement"]  # exact statement text -> its analysis


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a file is parsed and analysed.

    An AST has no reference cycles, so refcounting frees it; but its millions
    of allocations trigger full collections that walk the kernel's whole
    heap. Measured on a 100k-statement file: `ast.parse` took 5.7-9.4 s with
    the collector running and 1.2-1.7 s with it paused.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def split_statements(text: str, filename: str = "<live>", facts: Facts | None = None) -> list[Statement]:
    """Parse `text` into analysed top-level statements; raise SyntaxError with the file's line number.

    Errors that only the compiler sees in one statement (`return` outside a
    function) surface when the runner compiles the statements it is about
    to run, before any of them runs.

    `facts` is the caller's memory of analyses by exact statement text (a
    `LiveFile` passes the one from its last save). Statements whose text is
    in it are not analysed again, and on return it holds exactly this
    text's statements, so it stays the size of the file. So a save of a long
    file costs one parse plus the analysis of what changed.
    """
    with collector_paused():
        tree = ast.parse(text, filename=filename)
        lines = text.splitlines(keepends=True)
        _check_future_imports(tree, lines, filename)
        known: Facts = {} if facts is None else facts
        fresh: Facts = {}
        out = [analyse(node, _source_key(lines, node), known, fresh) for node in tree.body]
    if facts is not None:
        facts.clear()
        facts.update(fresh)
    return out


def analyse(node: ast.stmt, source_key: str | None = None, known: Facts | None = None, fresh: Facts | None = None) -> Statement:
    """The static facts of one top-level statement; reused from `known`/`fresh` by `source_key` (its exact text)."""
    decorators = getattr(node, "decorator_list", [])
    first = min([node.lineno, *(d.lineno for d in decorators)])
    end = node.end_lineno or node.lineno
    cached = None
    if source_key is not None:
        cached = (fresh or {}).get(source_key) or (known or {}).get(source_key)
    if cached is not None:  # same text elsewhere in the file, or in the last save
        c = cached
        stmt = Statement(
            c.key, node, first, end, c.defs, c.refs, c.lazy_refs, c.global_writes, c.name, c.patchable, c.star_import
        )
        if fresh is not None and source_key is not None:
            fresh[source_key] = stmt
        return stmt
    normal = ast.unparse(node)
    defs, refs, lazy, gwrites = _scopes_of(normal)  # symtable wants source; same scoping
    mutated, augmented = _module_level_targets(node)
    name = node.name if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else None
    stmt = Statement(
        key=normal,
        node=node,
        lineno=first,
        end_lineno=end,
        defs=defs | mutated,
        refs=refs | augmented,
        lazy_refs=lazy,
        global_writes=gwrites,
        name=name,
        patchable=isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not decorators,
        star_import=isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names),
    )
    if source_key is not None and fresh is not None:
        fresh[source_key] = stmt
    return stmt


def _source_key(lines: list[str], node: ast.stmt) -> str:
    """The statement's whole lines and its column span: equal keys mean equal statement text."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    end = node.end_lineno or node.lineno
    return f"{node.col_offset}:{node.end_col_offset}:" + "".join(lines[first - 1 : end])


def _check_future_imports(tree: ast.Module, lines: list[str], filename: str) -> None:
    """`from __future__` only at the top (the compiler's rule, checked here because statements compile one by one)."""
    body = tree.body
    start = 1 if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else 0
    seen_other = False
    for node in body[start:]:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            if seen_other:
                line = lines[node.lineno - 1] if node.lineno <= len(lines) else ""
                msg = "from __future__ imports must occur at the beginning of the file"
                raise SyntaxError(msg, (filename, node.lineno, node.col_offset + 1, line))
        else:
            seen_other = True


Scopes = tuple[frozenset[str], frozenset[str], frozenset[str], frozenset[str]]


def _scopes_of(source: str) -> Scopes:
    top = symtable.symtable(source, "<live>", "exec")
    defs = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    refs = {s.get_name() for s in top.get_symbols() if s.is_referenced()}
    lazy: set[str] = set()
    gwrites: set[str] = set()

    def walk(table: symtable.SymbolTable, eager: bool) -> None:
        for child in table.get_children():
            kind, cname = child.get_type(), child.get_name()
            child_eager = eager and (kind == "class" or cname in _EAGER_SCOPES)
            for sym in child.get_symbols():
                if sym.is_declared_global() and sym.is_assigned():
                    gwrites.add(sym.get_name())
                if sym.is_global() and sym.is_referenced():
                    (refs if child_eager else lazy).add(sym.get_name())
            walk(child, child_eager)

    walk(top, True)
    return frozenset(defs), frozenset(refs), frozenset(lazy - refs), frozenset(gwrites)


def _module_level_targets(node: ast.stmt) -> tuple[frozenset[str], frozenset[str]]:
    """(bases of subscripts/attributes assigned at module level, names read by augmented assignment).

    Only statements and assignment targets are walked, never whole
    expressions: an attribute or subscript can be stored only as a target
    (`d["k"] = 1`, `for o.x in ...`, `with ... as d.k`, `del d[k]`). A
    comprehension's target that stores into an attribute is not followed.
    """
    mutated: set[str] = set()
    augmented: set[str] = set()
    stack: list[ast.AST] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue  # another scope: runs later (functions) or binds class attributes
        targets: list[ast.expr] = []
        if isinstance(current, ast.Assign):
            targets = list(current.targets)
        elif isinstance(current, (ast.AugAssign, ast.AnnAssign)):
            targets = [current.target]
            if isinstance(current, ast.AugAssign) and isinstance(current.target, ast.Name):
                augmented.add(current.target.id)
        elif isinstance(current, (ast.For, ast.AsyncFor)):
            targets = [current.target]
        elif isinstance(current, ast.Delete):
            targets = list(current.targets)
        elif isinstance(current, (ast.With, ast.AsyncWith)):
            targets = [item.optional_vars for item in current.items if item.optional_vars is not None]
        for target in targets:
            for part in _target_parts(target):
                if isinstance(part, (ast.Attribute, ast.Subscript)):
                    base = _base_name(part)
                    if base is not None:
                        mutated.add(base)
        for fieldname in ("body", "orelse", "finalbody", "handlers", "cases"):
            for child in getattr(current, fieldname, ()) or ():
                stack.append(child)
    return frozenset(mutated), frozenset(augmented)


def _target_parts(target: ast.expr) -> list[ast.expr]:
    """The simple targets inside a (possibly nested, starred) assignment target."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return [part for elt in target.elts for part in _target_parts(elt)]
    if isinstance(target, ast.Starred):
        return _target_parts(target.value)
    return [target]


def _base_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _match(old: Sequence[Statement], new: Sequence[Statement]) -> tuple[dict[int, int], dict[int, int]]:
    """Rule 1: (new index -> old index of the same statement, old index -> new position of a removed one).

    The common head and tail are matched in one linear pass; only the
    middle, where the edit is, goes through `difflib` (whose index of the
    whole file would cost more than everything else in a save).
    """
    head = 0
    limit = min(len(old), len(new))
    while head < limit and old[head].key == new[head].key:
        head += 1
    tail = 0
    while tail < limit - head and old[len(old) - 1 - tail].key == new[len(new) - 1 - tail].key:
        tail += 1
    matched = {k: k for k in range(head)}
    matched.update({len(new) - 1 - k: len(old) - 1 - k for k in range(tail)})
    removed_at: dict[int, int] = {}  # old index -> the new position where it used to be
    mid_old = [s.key for s in old[head : len(old) - tail]]
    mid_new = [s.key for s in new[head : len(new) - tail]]
    matcher = difflib.SequenceMatcher(None, mid_old, mid_new, autojunk=False)
    for tag, i1, i2, j1, _ in matcher.get_opcodes():
        if tag == "equal":
            matched.update({head + j1 + k: head + i1 + k for k in range(i2 - i1)})
        else:
            removed_at.update({head + i: head + j1 for i in range(i1, i2)})
    return matched, removed_at


def plan(old: Sequence[Statement], new: Sequence[Statement]) -> Plan:
    """Which statements of `new` run after a save whose last good version was `old` (see the module rules)."""
    with collector_paused():
        matched, removed_at = _match(old, new)
    removed_old = sorted(removed_at)

    # Rule 2: pair changed plain defs with their old version, by name.
    patch: dict[int, int] = {}
    candidates: dict[tuple[str, bool], list[int]] = {}
    for j in removed_old:
        s = old[j]
        if s.patchable and s.name is not None:
            candidates.setdefault((s.name, isinstance(s.node, ast.AsyncFunctionDef)), []).append(j)
    for i, s in enumerate(new):
        if i in matched or not s.patchable or s.name is None:
            continue
        olds = candidates.get((s.name, isinstance(s.node, ast.AsyncFunctionDef)))
        if olds:
            patch[i] = olds.pop(0)
    removed = tuple(j for j in removed_old if j not in patch.values())

    stale: frozenset[str] = frozenset()
    if removed:  # only then can a name lose its last definition (keeps an edit from costing the whole file)
        removed_writes = set().union(*(old[j].writes for j in removed))
        still = set()
        for s in new:
            if s.defs & removed_writes or s.global_writes & removed_writes:
                still |= s.writes & removed_writes
        stale = frozenset(removed_writes - still)
    # What a removed statement defined counts as changed from where it was.
    seeds: dict[int, set[str]] = {}
    for j in removed:
        seeds.setdefault(removed_at[j], set()).update(old[j].writes)

    # Rules 3-5, to a fixed point: `anywhere` holds the names whose change
    # does not depend on position (functions whose behaviour changed); eager
    # reads follow file order.
    callers_write = {s.name: s.global_writes for s in new if s.global_writes and s.name is not None}
    anywhere: set[str] = set()
    while True:
        run: list[int] = []
        changed = set(anywhere)
        star = False
        for i, s in enumerate(new):
            changed |= seeds.get(i, set())
            if i not in matched or star or (s.refs & changed):
                run.append(i)
                changed |= s.writes
                for fname in s.refs & callers_write.keys():
                    changed |= callers_write[fname]
                star = star or s.star_import
        changed |= seeds.get(len(new), set())
        ran = set(run)
        grown = set(anywhere)
        for i, s in enumerate(new):
            if i not in ran and s.is_def and s.name is not None and s.lazy_refs & changed:
                grown.add(s.name)
        if grown == anywhere:
            return Plan(tuple(run), patch, matched, removed, stale)
        anywhere = grown
