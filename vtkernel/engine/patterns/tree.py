"""Patterns as data: the JSON form of a pattern, recorded while it is built, and rebuilt from it.

A pattern lives in the versioned document, so it must be plain JSON, never
a closure or a pickle. Every pattern built through the public functions
and methods carries `.tree`:

    "bd*2 [~ sd]"                          mini-notation (a plain string)
    3, 0.5                                 a number
    {"frac": [1, 3]}                       a Fraction
    {"value": <json>}                      a literal value (a mapping, a word, true/false, null)
    {"list": [<tree>, ...]}                a Python list argument (a sequence, timecat pairs)
    {"op": "fast", "args": [<pat>, 2]}     a method: args[0] is the pattern it is called on
    {"call": "stack", "args": [...]}       a function (`stack`, `cat`, `s`, `irand`, `sine`, ...)
    {"lambda": ["x1"], "body": <tree>}     a function argument (`every`, `off`, `superimpose`...)
    {"var": "x1"}                          the lambda's argument inside its body

So `s("bd*2 [~ sd]").n("<0 3>").every(3, lambda x: x.fast(2))` is

    {"op": "every", "args": [{"op": "n", "args": [{"call": "s", "args": ["bd*2 [~ sd]"]}, "<0 3>"]},
     3, {"lambda": ["x1"], "body": {"op": "fast", "args": [{"var": "x1"}, 2]}}]}

Recording: the public methods and functions are wrapped (`install()`, run
when the package is imported). A wrapper records only at the outermost
call, so the work a method does internally (and everything built while
querying) makes no trees. A Python callable argument is traced: it is
called once on a variable pattern whose tree is `{"var": ...}`, and the
tree of its result is stored. Only pattern operations can be stored: a
pattern that used something else (`fmap` with a Python function, a callable
that returns something other than a recorded pattern) has `tree = None` and
`tree_error` saying why, and `to_json` raises that one line.

`from_json(tree)` rebuilds the same pattern (same haps); `validate_json`
returns the canonical form or raises ValueError with one line. Both bound
the size and depth of what they accept (the input may be hostile), and only
the names listed here can be called.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from vtkernel.engine.patterns import controls, core, signals, tonal
from vtkernel.engine.patterns.core import RECORDING, Pattern

MAX_NODES = 20_000
"""Most nodes (dicts, lists, strings, numbers) a JSON form may have."""
MAX_DEPTH = 64
"""Deepest nesting of a JSON form."""
MAX_TEXT = 100_000
"""Most characters of mini-notation in one JSON form (all strings together)."""
MAX_INT = 2**63
"""Largest magnitude of an integer (numbers and fraction parts)."""

# The methods a tree may call: Strudel's names (aliases included) for the
# transformations in core, the controls, and tonal's `scale`.
METHODS: frozenset[str] = frozenset(
    """
    fast density slow sparsity early late fastGap fastgap compress focus zoom ply segment seg range rangex range2
    repeatCycles iter iterBack iterback linger degradeByWith degradeBy degrade undegradeBy undegrade
    sometimesBy sometimes often rarely almostNever almostAlways always never someCyclesBy someCycles
    euclid euclidRot euclidrot euclidLegato euclidLegatoRot firstOf every lastOf off chunk slowChunk slowchunk
    chunkBack chunkback fastChunk fastchunk inside outside when hurry swingBy swing echoWith stutWith echowith
    stutwith echo stut pressBy press chop striate steps apply layer superimpose stack seq sequence fastcat cat
    slowcat hush rev palindrome invert inv brak round floor ceil toBipolar fromBipolar asNumber ratio
    set keep keepif add sub mul div mod pow lt gt lte gte eq ne struct structAll mask maskAll reset restart
    scale
    """.split()
) | frozenset(controls.CONTROLS) | frozenset(f"{w}.{h}" for w in core.COMPOSER_NAMES for h in core.COMPOSER_HOWS)

_SIGNALS = (
    "sine sine2 cosine cosine2 saw saw2 isaw isaw2 square square2 tri tri2 time rand rand2 brand perlin".split()
)
CONSTANTS: dict[str, Pattern] = {name: getattr(signals, name) for name in _SIGNALS} | {
    "silence": core.silence,
    "nothing": core.nothing,
}

# The functions a tree may call, by Strudel's name.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "pure": core.pure,
    "reify": core.reify,
    "steady": core.steady,
    "gap": core.gap,
    "stack": core.stack,
    "polyrhythm": core.stack,
    "pr": core.stack,
    "slowcat": core.slowcat,
    "cat": core.cat,
    "fastcat": core.fastcat,
    "seq": core.sequence,
    "sequence": core.sequence,
    "timecat": core.timecat,
    "timeCat": core.timecat,
    "s_cat": core.timecat,
    "arrange": core.arrange,
    "s_polymeter": core.s_polymeter,
    "polymeter": core.s_polymeter,
    "pm": core.s_polymeter,
    "s_polymeterSteps": core.s_polymeterSteps,
    "polymeterSteps": core.s_polymeterSteps,
    "chooseWith": core.chooseWith,
    "chooseInWith": core.chooseInWith,
    "choose": core.choose,
    "chooseCycles": core.chooseCycles,
    "randcat": core.randcat,
    "irand": signals.irand,
    "brandBy": signals.brandBy,
    "run": signals.run,
    "perlinWith": signals.perlinWith,
    "scale": tonal.scale,
    **controls.CONTROLS,
}

_UNSTORABLE = "it was built with Python code, not only Strudel's functions and methods"


class TreeError(ValueError):
    """A JSON form that is not a valid pattern: one line."""


# ---------------------------------------------------------------------------
# Recording


def _encode(x: Any) -> tuple[Any, str | None]:
    """The tree of one argument, or (None, why it cannot be stored)."""
    if isinstance(x, Pattern):
        return (x.tree, None) if x.tree is not None else (None, x.tree_error or _UNSTORABLE)
    if isinstance(x, str):
        return x, None
    if isinstance(x, bool) or x is None:
        return {"value": x}, None
    if isinstance(x, int):
        return x, None
    if isinstance(x, float):
        if not math.isfinite(x):
            return None, f"{x} is not a finite number"
        return x, None
    if isinstance(x, Fraction):
        return {"frac": [x.numerator, x.denominator]}, None
    if isinstance(x, list | tuple):
        items = []
        for item in x:
            t, why = _encode(item)
            if why is not None:
                return None, why
            items.append(t)
        return {"list": items}, None
    if isinstance(x, dict):
        try:
            text = json.dumps(x, allow_nan=False, sort_keys=False)
        except (TypeError, ValueError):
            return None, "a mapping argument must be plain JSON"
        return {"value": json.loads(text)}, None
    if callable(x):
        return _trace(x)
    return None, f"an argument of type {type(x).__name__} cannot be stored"


def _var(name: str) -> Pattern:
    def query(_span: core.TimeSpan) -> list[core.Hap]:
        raise core.PatternError("a function argument is only a placeholder while it is traced")

    return Pattern(query).with_tree({"var": name})


def _trace(func: Callable[..., Any]) -> tuple[Any, str | None]:
    """Call `func` once on a variable pattern and keep the tree of what it returns."""
    state = RECORDING
    # Variables are named by nesting level, so the same pattern always gets the same tree.
    state.counter += 1
    name = f"x{state.counter}"
    saved = state.depth
    state.depth = 0
    try:
        result = func(_var(name))
    except TypeError as err:
        return None, f"a function argument must take one pattern ({err})"
    except (ValueError, ArithmeticError) as err:
        return None, f"a function argument failed when traced: {err}"
    finally:
        state.depth = saved
        state.counter -= 1
    if not isinstance(result, Pattern):
        return None, f"a function argument must return a pattern, not {type(result).__name__}"
    if result.tree is None:
        return None, result.tree_error or "a function argument must use only Strudel's functions and methods"
    return {"lambda": [name], "body": result.tree}, None


def _record(tree_of: Callable[..., tuple[Any, str | None]], func: Callable[..., Any]) -> Callable[..., Any]:
    def recorded(*args: Any) -> Any:
        state = RECORDING
        if state.depth:
            return func(*args)
        state.depth += 1
        try:
            result = func(*args)
        finally:
            state.depth -= 1
        if not isinstance(result, Pattern):
            return result
        tree, why = tree_of(*args)
        return result.with_tree(tree, why)

    recorded.__name__ = getattr(func, "__name__", "recorded")
    recorded.__qualname__ = getattr(func, "__qualname__", recorded.__name__)
    recorded.__doc__ = func.__doc__
    recorded.__wrapped__ = func  # type: ignore[attr-defined]
    return recorded


def _node(key: str, name: str, args: tuple[Any, ...]) -> tuple[Any, str | None]:
    """`{key: name, "args": [each arg's tree]}`, or why one arg has no tree."""
    encoded = []
    for x in args:
        t, why = _encode(x)
        if why is not None:
            return None, f"{name}: {why}"
        encoded.append(t)
    return {key: name, "args": encoded}, None


def _method_tree(name: str) -> Callable[..., tuple[Any, str | None]]:
    def tree_of(this: Pattern, *args: Any) -> tuple[Any, str | None]:
        return _node("op", name, (this, *args))

    return tree_of


def _op_tree(this: Pattern, what: str, how: str, *args: Any) -> tuple[Any, str | None]:
    """`pat.add.out(x)` is recorded as {"op": "add.out", ...}; `pat.add(x)` as {"op": "add", ...}."""
    name = what if how.lower() in ("in", "in_") else f"{what}.{how.lower()}"
    return _method_tree(name)(this, *args)


def _call_tree(name: str) -> Callable[..., tuple[Any, str | None]]:
    def tree_of(*args: Any) -> tuple[Any, str | None]:
        return _node("call", name, args)

    return tree_of


RECORDED: dict[str, Callable[..., Any]] = {}
"""The recording versions of FUNCTIONS (what the facade exports)."""

_installed = False


def install() -> None:
    """Wrap the public methods and functions so that what they build carries its tree (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    for name in sorted(METHODS):
        if "." in name:
            continue
        attr = Pattern.__dict__.get(name)
        if isinstance(attr, core.Composer):
            attr.fn = _record(_method_tree(name), attr.fn)
            continue
        method = getattr(Pattern, name)
        setattr(Pattern, name, _record(_method_tree(name), method))
    Pattern.op = _record(_op_tree, Pattern.op)  # type: ignore[method-assign]
    for name, function in FUNCTIONS.items():
        RECORDED[name] = _record(_call_tree(name), function)
    recorded_reify = RECORDED["reify"]

    def reify(thing: Any) -> Pattern:
        """A pattern from anything (`core.reify`); a Pattern or a mini string keeps its own tree."""
        if isinstance(thing, Pattern | str):
            return core.reify(thing)
        result: Pattern = recorded_reify(thing)
        return result

    RECORDED["reify"] = reify
    for name, pat in CONSTANTS.items():
        pat.tree = {"call": name, "args": []}
    # The modules' own names become the recording versions too, so `controls.s`
    # and `core.stack` build storable patterns whichever way they are imported.
    originals = {id(f): name for name, f in FUNCTIONS.items()}
    for module in (core, signals, controls, tonal):
        for attr, value in list(vars(module).items()):
            if attr.startswith("_") or attr == "reify" or not callable(value) or isinstance(value, type):
                continue
            if attr in RECORDED and FUNCTIONS[attr] is value:
                setattr(module, attr, RECORDED[attr])
            elif id(value) in originals:
                setattr(module, attr, RECORDED[originals[id(value)]])
    for name in controls.CONTROLS:
        controls.CONTROLS[name] = RECORDED[name]


# ---------------------------------------------------------------------------
# Rebuilding


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0
        self.text = 0


def _plain(data: Any, depth: int, budget: _Budget) -> Any:
    """Bound the shape of untrusted input and return it as plain JSON (tuples as lists, mappings as dicts)."""
    budget.nodes += 1
    if budget.nodes > MAX_NODES:
        raise TreeError(f"pattern: more than {MAX_NODES} nodes")
    if depth > MAX_DEPTH:
        raise TreeError(f"pattern: nested more than {MAX_DEPTH} deep")
    if isinstance(data, str):
        budget.text += len(data)
        if budget.text > MAX_TEXT:
            raise TreeError(f"pattern: more than {MAX_TEXT} characters of mini-notation")
        return data
    if isinstance(data, bool) or data is None:
        return data
    if isinstance(data, int):
        if abs(data) > MAX_INT:
            raise TreeError("pattern: an integer is too large")
        return data
    if isinstance(data, float):
        if not math.isfinite(data):
            raise TreeError("pattern: numbers must be finite")
        return data
    if isinstance(data, list | tuple):
        return [_plain(item, depth + 1, budget) for item in data]
    if isinstance(data, Mapping):
        out = {}
        for key, value in data.items():
            if not isinstance(key, str):
                raise TreeError("pattern: object keys must be strings")
            out[key] = _plain(value, depth + 1, budget)
        return out
    raise TreeError(f"pattern: {type(data).__name__} is not JSON")


def _args(node: dict[str, Any], key: str) -> list[Any]:
    args = node.get("args", [])
    if not isinstance(args, list):
        raise TreeError(f"pattern: {key} {node.get(key)!r} needs a list of args")
    return args


def _build(node: Any, env: dict[str, Pattern]) -> Any:
    if isinstance(node, str | int | float) and not isinstance(node, bool):
        return node
    if not isinstance(node, dict):
        raise TreeError(f"pattern: unexpected {json.dumps(node)[:40]}")
    if "op" in node:
        name = node["op"]
        if not isinstance(name, str) or name not in METHODS:
            raise TreeError(f"pattern: unknown method {str(name)[:40]!r}")
        args = _args(node, "op")
        if not args:
            raise TreeError(f"pattern: method {name!r} needs the pattern it is called on")
        this = _as_pattern(_build(args[0], env))
        rest = [_build(a, env) for a in args[1:]]
        if "." in name:
            what, how = name.split(".")
            return this.op(what, how, *rest)
        return getattr(this, name)(*rest)
    if "call" in node:
        name = node["call"]
        if not isinstance(name, str):
            raise TreeError("pattern: a call needs a function name")
        args = _args(node, "call")
        if name in CONSTANTS:
            if args:
                raise TreeError(f"pattern: {name} takes no arguments")
            return CONSTANTS[name]
        if name not in RECORDED:
            raise TreeError(f"pattern: unknown function {name[:40]!r}")
        return RECORDED[name](*[_build(a, env) for a in args])
    if "frac" in node:
        parts = node["frac"]
        if (
            not isinstance(parts, list)
            or len(parts) != 2
            or not all(isinstance(x, int) and not isinstance(x, bool) for x in parts)
            or parts[1] == 0
        ):
            raise TreeError("pattern: a frac is [numerator, denominator], integers, denominator not 0")
        return Fraction(parts[0], parts[1])
    if "value" in node:
        return json.loads(json.dumps(node["value"]))
    if "list" in node:
        items = node["list"]
        if not isinstance(items, list):
            raise TreeError("pattern: a list node holds a list")
        return [_build(x, env) for x in items]
    if "var" in node:
        name = node["var"]
        if not isinstance(name, str) or name not in env:
            raise TreeError(f"pattern: variable {str(name)[:40]!r} is not bound")
        return env[name]
    if "lambda" in node:
        params = node["lambda"]
        if not isinstance(params, list) or len(params) != 1 or not isinstance(params[0], str):
            raise TreeError("pattern: a lambda takes one named parameter")
        param = params[0]
        body = node.get("body")

        def function(x: Any) -> Pattern:
            return _as_pattern(_build(body, {**env, param: _as_pattern(x)}))

        return function
    raise TreeError(f"pattern: unknown node with keys {sorted(node)[:4]}")


def _as_pattern(x: Any) -> Pattern:
    """reify, recorded (a number on its own becomes `reify(3)` in the tree)."""
    result: Pattern = RECORDED["reify"](x)
    return result


def from_json(data: Any) -> Pattern:
    """The pattern a JSON form describes (a plain string is mini-notation); ValueError with one line.

    A Pattern is accepted too (it is rebuilt from its own JSON form).
    """
    if isinstance(data, Pattern):
        data = to_json(data)
    data = _plain(data, 0, _Budget())
    saved = RECORDING.depth
    RECORDING.depth = 0
    try:
        result = _as_pattern(_build(data, {}))
    except TreeError:
        raise
    except RecursionError:
        raise TreeError("pattern: nested too deep") from None
    except (ValueError, TypeError, ArithmeticError, KeyError, IndexError, AttributeError) as err:
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TreeError(message if isinstance(err, ValueError) else f"pattern: {message}") from None
    finally:
        RECORDING.depth = saved
    return result


def validate_json(data: Any) -> Any:
    """The canonical JSON form of `data` (a JSON form, a mini string or a Pattern), or ValueError with one line."""
    pat = from_json(data)
    return to_json(pat)


def to_json(pat: Any) -> Any:
    """The JSON form of a pattern (or of a mini-notation string); ValueError with one line if it has none."""
    if isinstance(pat, str):
        return validate_json(pat)
    if not isinstance(pat, Pattern):
        raise TreeError(f"not a pattern: {type(pat).__name__}")
    if pat.tree is None:
        raise TreeError(f"this pattern cannot be stored: {pat.tree_error or _UNSTORABLE}")
    return pat.tree
