"""`split_statements` and `plan`: what a save re-runs, decided statically."""

from __future__ import annotations

import textwrap

import pytest

from vtkernel.live.analysis import plan, split_statements


def stmts(text: str):
    return split_statements(textwrap.dedent(text))


def lines_run(old: str, new: str) -> list[int]:
    new_s = stmts(new)
    p = plan(stmts(old), new_s)
    return [new_s[i].lineno for i in p.run]


def test_defs_and_refs_of_common_statements():
    s = stmts(
        """\
        import os.path as op, sys
        from m import k
        x = a + b
        d["k"] = v
        y += 1
        @deco(arg)
        def f(p, q=default):
            global G
            G = p
            return g(p) + [w for w in ws]
        class C(Base):
            attr = val
            def m(self):
                return other
        res = [t for t in items if t > thr]
        """
    )
    imports, from_, x, d, y, f, c, res = s
    assert imports.defs == {"op", "sys"} and from_.defs == {"k"}
    assert x.defs == {"x"} and x.refs == {"a", "b"}
    assert d.defs == {"d"} and d.refs == {"d", "v"}  # a subscript store changes d
    assert y.defs == {"y"} and y.refs == {"y"}
    assert f.defs == {"f"} and f.refs == {"deco", "arg", "default"}  # decorators, defaults: at def time
    assert f.lazy_refs == {"g", "ws"} and f.global_writes == {"G"}  # the body: at call time
    assert f.lineno == 6 and not f.patchable  # decorated: rebound, not patched
    assert c.defs == {"C"} and c.refs == {"Base", "val"} and c.lazy_refs == {"other"}
    assert res.defs == {"res"} and res.refs == {"items", "thr"}


def test_comments_and_blank_lines_change_nothing():
    assert lines_run("x = 1\ny = x\n", "# hello\nx = 1  # one\n\ny = x\n") == []


def test_a_changed_statement_and_its_dependents_run_in_file_order():
    old = "a = 1\nb = a + 1\nc = 5\nd = b * 2\ne = c\n"
    new = "a = 2\nb = a + 1\nc = 5\nd = b * 2\ne = c\n"
    assert lines_run(old, new) == [1, 2, 4]


def test_a_reader_before_the_definer_does_not_run():
    # File order: line 1 read the old binding, not the one line 3 makes.
    assert lines_run("x = 1\ny = x\nx = 2\n", "x = 1\ny = x\nx = 3\n") == [3]


def test_a_body_edit_is_a_patch_and_its_callers_run_again():
    old = "def f():\n    return 1\nuse = f()\nkeep = 1\n"
    new = "def f():\n    return 2\nuse = f()\nkeep = 1\n"
    new_s = stmts(new)
    p = plan(stmts(old), new_s)
    assert p.patch == {0: 0}
    assert [new_s[i].lineno for i in p.run] == [1, 3]


def test_a_function_that_calls_a_changed_function_is_not_redefined_but_its_callers_run():
    old = "def g():\n    return 1\ndef f():\n    return g()\nr = f()\nq = 0\n"
    new = "def g():\n    return 2\ndef f():\n    return g()\nr = f()\nq = 0\n"
    assert lines_run(old, new) == [1, 5]


def test_lazy_dependencies_hold_whatever_the_order_of_definitions():
    old = "def f():\n    return g()\ndef g():\n    return 1\nr = f()\n"
    new = "def f():\n    return g()\ndef g():\n    return 2\nr = f()\n"
    assert lines_run(old, new) == [3, 5]


def test_a_renamed_function_is_new_not_a_patch():
    new_s = stmts("def h():\n    return 1\n")
    p = plan(stmts("def f():\n    return 1\n"), new_s)
    assert p.patch == {} and p.run == (0,)
    assert p.stale == {"f"}


def test_a_removed_statement_makes_its_readers_run():
    assert lines_run("x = 1\ny = x\nz = 0\n", "y = x\nz = 0\n") == [1]


def test_a_global_write_through_a_call_reaches_readers():
    old = "def init():\n    global G\n    G = 1\ninit()\nn = 1\nuse = G\n"
    new = "def init():\n    global G\n    G = 1\ninit()\nn = 2\nuse = G\n"
    assert lines_run(old, new) == [5]
    edited = "def init():\n    global G\n    G = 2\ninit()\nn = 1\nuse = G\n"
    assert lines_run(old, edited) == [1, 4, 6]


def test_a_star_import_that_runs_makes_every_later_statement_run():
    assert lines_run("x = 1\nfrom os import *\ny = 2\n", "x = 2\nfrom os import *\ny = 2\n") == [1]
    assert lines_run("from os import *\ny = 2\n", "from os.path import *\ny = 2\n") == [1, 2]


def test_duplicate_statements_are_matched_in_order():
    assert lines_run("log()\nx = 1\nlog()\n", "log()\nx = 2\nlog()\n") == [2]


def test_a_late_future_import_is_a_syntax_error_at_its_line():
    with pytest.raises(SyntaxError) as info:
        split_statements(
            '"""doc"""\nfrom __future__ import annotations\nx = 1\nfrom __future__ import division\n', "patch.py"
        )
    assert info.value.lineno == 4


def test_an_unchanged_statement_reuses_its_analysis_at_its_new_position():
    (first,) = stmts("def f():\n    return g()\n")
    second = split_statements("\n\ndef f():\n    return g()\n")[0]
    assert second.key == first.key and second.lazy_refs == {"g"}
    assert second.lineno == 3 and second.node.lineno == 3
