"""Continuous signals and Strudel's random numbers.

A signal is a pattern whose haps have no `whole`: its value is sampled at
the midpoint of the queried part (`sine`, `saw`, `rand`, ...). `segment(n)`
turns one into n discrete events per cycle.

Randomness is a pure function of time, exactly as Strudel 1.1 computes it:
the time (a double) is stretched 300 cycles over [0, 2**29), then put
through a 32-bit xorshift with JavaScript's int32 arithmetic. The same
pattern therefore drops the same hits (`"hh*8?"`) here and in Strudel.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from vtkernel.engine.patterns import jsmath
from vtkernel.engine.patterns.core import Hap, Pattern, fastcat, make_signal, reify

_SEED_SCALE = 536870912  # 2**29


def _i32(x: int) -> int:
    """ToInt32: wrap an integer to a signed 32-bit value."""
    x &= 0xFFFFFFFF
    return x - 0x100000000 if x & 0x80000000 else x


def xorwise(x: int) -> int:
    """Strudel's xorshift step (`x << 13`, `>> 17`, `<< 5`) in JavaScript int32 semantics."""
    x = _i32(x)
    a = _i32(x << 13) ^ x
    b = (a >> 17) ^ a
    return _i32(b << 5) ^ b


def _js_trunc(x: float) -> int:
    return int(x)  # int() truncates toward zero, as Math.trunc


def time_to_int_seed(x: float) -> int:
    q = x / 300
    f = q - math.trunc(q)
    return xorwise(_js_trunc(f * _SEED_SCALE))


def int_seed_to_rand(x: int) -> float:
    r = abs(x) % _SEED_SCALE
    if x < 0:
        r = -r
    return r / _SEED_SCALE


def time_to_rand(x: float) -> float:
    """Strudel's `timeToRand`: the random number in [0, 1) for time `x` (cycles)."""
    return abs(int_seed_to_rand(time_to_int_seed(x)))


def time_to_rands(t: float, n: int) -> list[float]:
    """`n` random numbers from one time seed (successive xorshift states)."""
    seed = time_to_int_seed(t)
    out = []
    for _ in range(n):
        out.append(int_seed_to_rand(seed))
        seed = xorwise(seed)
    return out


def signal(func: Any) -> Pattern:
    """A continuous pattern: `func(t)` of the part's midpoint (as a float, like JS's `valueOf`)."""
    return make_signal(func)


def _fmod(a: float, b: float) -> float:
    return math.fmod(a, b)


saw = signal(lambda t: _fmod(t, 1))
saw2 = saw.toBipolar()
isaw = signal(lambda t: 1 - _fmod(t, 1))
isaw2 = isaw.toBipolar()
sine2 = signal(lambda t: jsmath.sin(math.pi * 2 * t))  # V8's Math.sin, bit for bit
sine = sine2.fromBipolar()
cosine = sine._early(Fraction(1, 4))
cosine2 = sine2._early(Fraction(1, 4))
square = signal(lambda t: math.floor(_fmod(t * 2, 2)))
square2 = square.toBipolar()
tri = fastcat(isaw, saw)
tri2 = fastcat(isaw2, saw2)
time = Pattern(lambda span: [Hap(None, span, span.midpoint())])  # the time itself, a Fraction as in Strudel

rand = signal(time_to_rand)
rand2 = rand.toBipolar()


def _brand_by(p: Any) -> Pattern:
    return rand.fmap(lambda x: x < p)


def brandBy(p: Any) -> Pattern:
    """Random booleans, true with probability `p` (patternable)."""
    return reify(p).fmap(_brand_by).innerJoin()


brand = _brand_by(0.5)


def _irand(i: Any) -> Pattern:
    return rand.fmap(lambda x: int(x * i))


def irand(i: Any) -> Pattern:
    """Random integers in `0 .. i-1` (continuous; `segment` it)."""
    return reify(i).fmap(_irand).innerJoin()


def run(n: Any) -> Pattern:
    """`0 1 .. n-1` in one cycle."""
    return saw.range(0, n).floor().segment(n)


def perlinWith(pat: Any) -> Pattern:
    p = reify(pat)
    pata = p.fmap(math.floor)
    patb = p.fmap(lambda t: math.floor(t) + 1)

    def smoother_step(x: float) -> float:
        return 6.0 * x**5 - 15.0 * x**4 + 10.0 * x**3

    def interp(x: float) -> Any:
        return lambda a: lambda b: a + smoother_step(x) * (b - a)

    return p.sub(pata).fmap(interp).appBoth(pata.fmap(time_to_rand)).appBoth(patb.fmap(time_to_rand))


perlin = perlinWith(time.fmap(float))


