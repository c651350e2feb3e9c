"""The pattern language users type: Strudel/Tidal patterns in Python (SPEC §9).

    from vtkernel.patterns import s, n, note, stack, cat, seq, sine, rand, mini

    drums = s("bd*2 [~ sd]").n("<0 3>").every(3, lambda x: x.fast(2))
    bass = n("0 2 4 <5 7>").scale("C2:minor").s("sawtooth").lpf(sine.range(400, 2000))
    vt.module("drums", "pattern", pattern=drums)

Everything here has Strudel 1.1's name and argument order: the same text
gives the same events as Strudel (random choices included). Strings given
where a pattern is expected are mini-notation, numbers are constants.
Methods live on `Pattern` (`fast`, `slow`, `rev`, `every`, `off`,
`degradeBy`, `struct`, `mask`, `euclid`, `chunk`, `range`, `add`, the
controls `s`, `n`, `note`, `gain`, `pan`, ... and `scale`); the functions
below are the top-level forms. Transformations used as functions take the
pattern last (`fast(2, pat)`) and, without it, return a function of one
pattern (`p.every(3, fast(2))`), as in Strudel.

A pattern built from these carries its JSON form (`to_json(p)`), which is
what the document stores; `from_json` rebuilds it. In a cell `vt.p(text)`
is `mini(text)`. Nothing here is injected into the user's namespace: import
what you use.
"""

from __future__ import annotations

from typing import Any

from vtkernel.engine.patterns import controls as _controls
from vtkernel.engine.patterns import core as _core
from vtkernel.engine.patterns import signals as _signals
from vtkernel.engine.patterns import tree as _tree
from vtkernel.engine.patterns.core import Hap, Pattern, PatternError, TimeSpan
from vtkernel.engine.patterns.mini import MiniError
from vtkernel.engine.patterns.tonal import note_to_midi
from vtkernel.engine.patterns.tree import TreeError, from_json, to_json, validate_json

_R = _tree.RECORDED


def mini(text: str) -> Pattern:
    """Parse mini-notation (`"bd*2 [~ sd] <cp hh>"`) into a Pattern; `MiniError` (one line, with the column)."""
    if not isinstance(text, str):
        raise TypeError(f"mini() takes a string, not {type(text).__name__}")
    return _core.reify(text)


p = mini

# Constructors and combinators
pure = _R["pure"]
reify = _R["reify"]
stack = _R["stack"]
polyrhythm = _R["polyrhythm"]
cat = _R["cat"]
slowcat = _R["slowcat"]
seq = _R["seq"]
sequence = _R["sequence"]
fastcat = _R["fastcat"]
timecat = _R["timecat"]
timeCat = _R["timeCat"]
arrange = _R["arrange"]
polymeter = _R["polymeter"]
polymeterSteps = _R["polymeterSteps"]
s_polymeter = _R["s_polymeter"]
s_polymeterSteps = _R["s_polymeterSteps"]
randcat = _R["randcat"]
chooseCycles = _R["chooseCycles"]
choose = _R["choose"]
chooseWith = _R["chooseWith"]
chooseInWith = _R["chooseInWith"]
gap = _R["gap"]
steady = _R["steady"]
silence = _core.silence
nothing = _core.nothing

# Signals (continuous: `whole` is None; `segment(n)` makes them discrete)
sine = _signals.sine
sine2 = _signals.sine2
cosine = _signals.cosine
cosine2 = _signals.cosine2
saw = _signals.saw
saw2 = _signals.saw2
isaw = _signals.isaw
isaw2 = _signals.isaw2
tri = _signals.tri
tri2 = _signals.tri2
square = _signals.square
square2 = _signals.square2
rand = _signals.rand
rand2 = _signals.rand2
brand = _signals.brand
perlin = _signals.perlin
time = _signals.time  # not in __all__: `import *` must not hide the stdlib module `time`
irand = _R["irand"]
brandBy = _R["brandBy"]
run = _R["run"]

# Tonal
scale = _R["scale"]

# Transformations as functions (pattern last, curried)
fast = _core.fast
slow = _core.slow
early = _core.early
late = _core.late
rev = _core.rev
ply = _core.ply
palindrome = _core.palindrome
firstOf = _core.firstOf
every = _core.every
lastOf = _core.lastOf
off = _core.off
superimpose = _core.superimpose
degradeBy = _core.degradeBy
degrade = _core.degrade
undegradeBy = _core.undegradeBy
sometimesBy = _core.sometimesBy
sometimes = _core.sometimes
often = _core.often
rarely = _core.rarely
almostNever = _core.almostNever
almostAlways = _core.almostAlways
someCyclesBy = _core.someCyclesBy
someCycles = _core.someCycles
struct = _core.struct
mask = _core.mask
euclid = _core.euclid
euclidRot = _core.euclidRot
euclidLegato = _core.euclidLegato
euclidLegatoRot = _core.euclidLegatoRot
segment = _core.segment
add = _core.add
sub = _core.sub
mul = _core.mul
div = _core.div
chunk = _core.chunk
chunkBack = _core.chunkBack
fastChunk = _core.fastChunk
linger = _core.linger
zoom = _core.zoom
compress = _core.compress
fastGap = _core.fastGap
inside = _core.inside
outside = _core.outside
when = _core.when
invert = _core.invert
brak = _core.brak
press = _core.press
pressBy = _core.pressBy
hurry = _core.hurry
swingBy = _core.swingBy
swing = _core.swing
echo = _core.echo
echoWith = _core.echoWith
stut = _core.stut
chop = _core.chop
striate = _core.striate
repeatCycles = _core.repeatCycles
iterBack = _core.iterBack

# Controls: every Strudel param and alias is reachable as an attribute (see __getattr__);
# the common ones are named here.
s = _R["s"]
sound = _R["sound"]
n = _R["n"]
note = _R["note"]
gain = _R["gain"]
velocity = _R["velocity"]
pan = _R["pan"]
speed = _R["speed"]
legato = _R["legato"]
clip = _R["clip"]
dur = _R["dur"]
orbit = _R["orbit"]
cutoff = _R["cutoff"]
lpf = _R["lpf"]
resonance = _R["resonance"]
hcutoff = _R["hcutoff"]
hpf = _R["hpf"]
room = _R["room"]
size = _R["size"]
delay = _R["delay"]
delaytime = _R["delaytime"]
delayfeedback = _R["delayfeedback"]
begin = _R["begin"]
end = _R["end"]
cut = _R["cut"]
shape = _R["shape"]
crush = _R["crush"]
coarse = _R["coarse"]
vowel = _R["vowel"]
attack = _R["attack"]
decay = _R["decay"]
sustain = _R["sustain"]
release = _R["release"]
channel = _R["channel"]
freq = _R["freq"]
accelerate = _R["accelerate"]
unit = _R["unit"]
bank = _R["bank"]
octave = _R["octave"]
postgain = _R["postgain"]


def __getattr__(name: str) -> Any:
    """The other controls (`vtkernel.patterns.lpq`, `...djf`) and Strudel's `iter`, `range`, `set`, `round`."""
    if name in _controls.CONTROLS:
        return _controls.CONTROLS[name]
    builtin_like = {"iter": _core.iter, "range": _core.range_, "set": _core.set_}
    if name in builtin_like:
        return builtin_like[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [  # noqa: RUF022 - grouped as above, not sorted
    "Hap", "MiniError", "Pattern", "PatternError", "TimeSpan", "TreeError",
    "mini", "p", "from_json", "to_json", "validate_json", "note_to_midi",
    "pure", "reify", "stack", "polyrhythm", "cat", "slowcat", "seq", "sequence", "fastcat", "timecat", "timeCat",
    "arrange", "polymeter", "polymeterSteps", "s_polymeter", "s_polymeterSteps", "randcat", "chooseCycles",
    "choose", "chooseWith", "chooseInWith", "gap", "steady", "silence", "nothing",
    "sine", "sine2", "cosine", "cosine2", "saw", "saw2", "isaw", "isaw2", "tri", "tri2", "square", "square2",
    "rand", "rand2", "brand", "perlin", "irand", "brandBy", "run", "scale",
    "fast", "slow", "early", "late", "rev", "ply", "palindrome", "firstOf", "every", "lastOf", "off",
    "superimpose", "degradeBy", "degrade", "undegradeBy", "sometimesBy", "sometimes", "often", "rarely",
    "almostNever", "almostAlways", "someCyclesBy", "someCycles", "struct", "mask", "euclid", "euclidRot",
    "euclidLegato", "euclidLegatoRot", "segment", "add", "sub", "mul", "div", "chunk", "chunkBack", "fastChunk",
    "linger", "zoom", "compress", "fastGap", "inside", "outside", "when", "invert", "brak", "press", "pressBy",
    "hurry", "swingBy", "swing", "echo", "echoWith", "stut", "chop", "striate", "repeatCycles", "iterBack",
    "s", "sound", "n", "note", "gain", "velocity", "pan", "speed", "legato", "clip", "dur", "orbit", "cutoff",
    "lpf", "resonance", "hcutoff", "hpf", "room", "size", "delay", "delaytime", "delayfeedback", "begin", "end",
    "cut", "shape", "crush", "coarse", "vowel", "attack", "decay", "sustain", "release", "channel", "freq",
    "accelerate", "unit", "bank", "octave", "postgain",
]
