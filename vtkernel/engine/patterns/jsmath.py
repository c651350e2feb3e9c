"""JavaScript's `Math.sin`, bit for bit, so `sine` gives Strudel's values.

V8 computes `Math.sin` with fdlibm's algorithm (argument reduction by pi/2 in
three Cody-Waite steps, then the degree-13 sine and degree-14 cosine kernels);
the C library Python uses rounds differently in about 3% of the arguments a
pattern's `sine` meets (measured: 6381 of 200,000 `sin(2*pi*k/64)`). This is
that algorithm, written for Python floats (every operation is one IEEE double
operation, as in C). Arguments beyond 2^19 * pi/2 (t > 131,000 cycles for
`sine`) would need fdlibm's Payne-Hanek reduction; there we fall back to
`math.sin`.

Pure; checked against node's `Math.sin` in tests/patterns/test_differential.py.
"""

from __future__ import annotations

import math
import struct

__all__ = ["sin"]

_S1 = -1.66666666666666324348e-01
_S2 = 8.33333333332248946124e-03
_S3 = -1.98412698298579493134e-04
_S4 = 2.75573137070700676789e-06
_S5 = -2.50507602534068634195e-08
_S6 = 1.58969099521155010221e-10

_C1 = 4.16666666666666019037e-02
_C2 = -1.38888888888741095749e-03
_C3 = 2.48015872894767294178e-05
_C4 = -2.75573143513906633035e-07
_C5 = 2.08757232129817482790e-09
_C6 = -1.13596475577881948265e-11

_INVPIO2 = 6.36619772367581382433e-01  # 53 bits of 2/pi
_PIO2_1 = 1.57079632673412561417e00  # first 33 bits of pi/2
_PIO2_1T = 6.07710050650619224932e-11  # pi/2 - PIO2_1
_PIO2_2 = 6.07710050630396597660e-11  # second 33 bits
_PIO2_2T = 2.02226624879595063154e-21
_PIO2_3 = 2.02226624871116645580e-21  # third 33 bits
_PIO2_3T = 8.47842766036889956997e-32

_NPIO2_HW = (
    0x3FF921FB, 0x400921FB, 0x4012D97C, 0x401921FB, 0x401F6A7A, 0x4022D97C, 0x4025FDBB, 0x402921FB,
    0x402C463A, 0x402F6A7A, 0x4031475C, 0x4032D97C, 0x40346B9C, 0x4035FDBB, 0x40378FDB, 0x403921FB,
    0x403AB41B, 0x403C463A, 0x403DD85A, 0x403F6A7A, 0x40407E4C, 0x4041475C, 0x4042106C, 0x4042D97C,
    0x4043A28C, 0x40446B9C, 0x404534AC, 0x4045FDBB, 0x4046C6CB, 0x40478FDB, 0x404858EB, 0x404921FB,
)  # fmt: skip

_pack = struct.Struct("<d").pack
_unpack = struct.Struct("<q").unpack


def _high(x: float) -> int:
    """The high 32-bit word of a double, as a signed int (C's GET_HIGH_WORD)."""
    bits: int = _unpack(_pack(x))[0]
    hi = (bits >> 32) & 0xFFFFFFFF
    return hi - (1 << 32) if hi & 0x80000000 else hi


def _from_high(hi: int) -> float:
    """A double whose high word is `hi` and low word 0 (C's INSERT_WORDS(x, hi, 0))."""
    result: float = struct.unpack("<d", struct.pack("<Q", (hi & 0xFFFFFFFF) << 32))[0]
    return result


def _kernel_sin(x: float, y: float, iy: int) -> float:
    ix = _high(x) & 0x7FFFFFFF
    if ix < 0x3E400000 and int(x) == 0:
        return x
    z = x * x
    v = z * x
    r = _S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * _S6)))
    if iy == 0:
        return x + v * (_S1 + z * r)
    return x - ((z * (0.5 * y - v * r) - y) - v * _S1)


def _kernel_cos(x: float, y: float) -> float:
    ix = _high(x) & 0x7FFFFFFF
    if ix < 0x3E400000 and int(x) == 0:
        return 1.0
    z = x * x
    r = z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * _C6)))))
    if ix < 0x3FD33333:
        return 1.0 - (0.5 * z - (z * r - x * y))
    qx = 0.28125 if ix > 0x3FE90000 else _from_high(ix - 0x00200000)
    hz = 0.5 * z - qx
    a = 1.0 - qx
    return a - (hz - (z * r - x * y))


def _rem_pio2(x: float) -> tuple[int, float, float] | None:
    """(n, y0, y1) with x = n*pi/2 + y0 + y1, or None when x needs Payne-Hanek."""
    hx = _high(x)
    ix = hx & 0x7FFFFFFF
    if ix < 0x4002D97C:  # |x| < 3pi/4: n = +-1
        if hx > 0:
            z = x - _PIO2_1
            if ix != 0x3FF921FB:
                y0 = z - _PIO2_1T
                return 1, y0, (z - y0) - _PIO2_1T
            z -= _PIO2_2
            y0 = z - _PIO2_2T
            return 1, y0, (z - y0) - _PIO2_2T
        z = x + _PIO2_1
        if ix != 0x3FF921FB:
            y0 = z + _PIO2_1T
            return -1, y0, (z - y0) + _PIO2_1T
        z += _PIO2_2
        y0 = z + _PIO2_2T
        return -1, y0, (z - y0) + _PIO2_2T
    if ix > 0x413921FB:
        return None
    t = abs(x)
    n = int(t * _INVPIO2 + 0.5)
    fn = float(n)
    r = t - fn * _PIO2_1
    w = fn * _PIO2_1T
    if n < 32 and ix != _NPIO2_HW[n - 1]:
        y0 = r - w
    else:
        j = ix >> 20
        y0 = r - w
        i = j - ((_high(y0) >> 20) & 0x7FF)
        if i > 16:
            t = r
            w = fn * _PIO2_2
            r = t - w
            w = fn * _PIO2_2T - ((t - r) - w)
            y0 = r - w
            i = j - ((_high(y0) >> 20) & 0x7FF)
            if i > 49:
                t = r
                w = fn * _PIO2_3
                r = t - w
                w = fn * _PIO2_3T - ((t - r) - w)
                y0 = r - w
    y1 = (r - y0) - w
    if hx < 0:
        return -n, -y0, -y1
    return n, y0, y1


def sin(x: float) -> float:
    """`Math.sin(x)` as V8 computes it."""
    ix = _high(x) & 0x7FFFFFFF
    if ix <= 0x3FE921FB:
        return _kernel_sin(x, 0.0, 0)
    if ix >= 0x7FF00000:
        return math.nan
    reduced = _rem_pio2(x)
    if reduced is None:
        return math.sin(x)
    n, y0, y1 = reduced
    k = n & 3
    if k == 0:
        return _kernel_sin(y0, y1, 1)
    if k == 1:
        return _kernel_cos(y0, y1)
    if k == 2:
        return -_kernel_sin(y0, y1, 1)
    return -_kernel_cos(y0, y1)
