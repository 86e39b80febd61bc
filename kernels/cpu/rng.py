"""Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11) + Box-Muller.

Box-Muller uses our own libm-free log, cos and sin (fdlibm / Cephes polynomials), so the
normal loop vectorises and the arithmetic is the same on every backend: every product
that feeds a sum is an explicit ``fma`` (one rounding, on every target), no other product
feeds a sum inexactly, and the integer <-> float conversions are exact bit tricks, so
CPU and GPU give the same numbers bit for bit, whatever either compiler contracts. The
bit tricks also keep the loop in vector registers on AVX2, which has no vector
int64 <-> float64 conversion (AVX-512 has).

Every random number of the package is a pure function of

    key     = (seed mod 2^32, seed div 2^32)
    counter = (block j, stream, network mod 2^32, network div 2^32)

so network ``e`` of seed ``s`` is the same whatever the batch size, thread count,
machine split or backend. ``stream`` encodes (layer, purpose), see ``stream_id``.
Block ``j`` of a stream yields 4 uint32 words -> 4 uniforms or 4 normals, so the
m-th number of a stream is lane ``m % 4`` of block ``m // 4``.

All arithmetic is done in uint64 with explicit masks so that the same scalar code
compiles under @njit and (later) @cuda.jit.
"""

import math

import numpy as np
from numba import njit, types
from numba.core.extending import intrinsic

from .config import FASTMATH

_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_TWO_M32 = 2.0**-32
_TWO_PI = 2.0 * math.pi
# Exact integer -> float64 conversions by the bits: the float64 with the bits
# 0x433 << 52 | k is 2^52 + k for 0 <= k < 2^52.
_TWO_52_BITS = np.int64(0x4330000000000000)
_TWO_52 = 2.0**52
# Adding 1.5 2^52 to an integer-valued |q| < 2^51 puts q + 2^51 in the low mantissa bits.
_ROUND_MAGIC = 1.5 * 2.0**52

# Purposes within one layer's streams.
PURPOSE_WEIGHTS = 0
PURPOSE_BIAS = 1
PURPOSE_FRAME = 2
PURPOSE_NTK = 3
PURPOSE_RADIUS = 4  # cos-net fields (kernels.cpu.field): |w| uniforms
PURPOSE_AMPLITUDE = 5  # cos-net fields: amplitude normals
N_PURPOSES = 8


@njit(inline="always")
def stream_id(layer, purpose):
    """Stream number of (layer, purpose); layer counts from 1 (docs/conventions.md#network)."""
    return np.uint64(layer * N_PURPOSES + purpose)


@intrinsic
def float_bits(typingctx, x):
    """The IEEE-754 bits of a float64 as an int64 (an LLVM bitcast; vectorises)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def bits_float(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits`` (an LLVM bitcast)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@intrinsic
def floor_float(typingctx, x):
    """floor(x) as a float64 (llvm.floor.f64, a vector rounding instruction; Numba's
    math.floor returns an int64, which costs two scalar conversions per value on AVX2)."""

    def codegen(context, builder, signature, args):
        floor = builder.module.declare_intrinsic("llvm.floor", [args[0].type])
        return builder.call(floor, args)

    return types.float64(types.float64), codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a b + c with one rounding (llvm.fma.f64: a vector FMA instruction where the CPU has
    one; on the GPU the twin is libdevice's ``fma``)."""

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return types.float64(types.float64, types.float64, types.float64), codegen


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def philox4x32(c0, c1, c2, c3, k0, k1):
    """Philox4x32-10 block function; all inputs are uint64 holding 32-bit values."""
    for _ in range(10):
        p0 = _M0 * c0
        p1 = _M1 * c2
        hi0 = p0 >> _SHIFT32
        lo0 = p0 & _MASK32
        hi1 = p1 >> _SHIFT32
        lo1 = p1 & _MASK32
        c0 = hi1 ^ c1 ^ k0
        c1 = lo1
        c2 = hi0 ^ c3 ^ k1
        c3 = lo0
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return c0, c1, c2, c3


@njit(inline="always")
def _uniform(word):
    """uint32 word -> (word + 1/2) 2^-32, uniform in the open interval (0, 1).

    (2^52 + word) - (2^52 - 1/2) = word + 1/2 exactly, the first term by the bits.
    """
    return (bits_float(np.int64(word) | _TWO_52_BITS) - (_TWO_52 - 0.5)) * _TWO_M32


# Cephes minimax coefficients for sin and cos on [-pi/4, pi/4] (relative error ~1e-16).
_SIN_C = (
    1.58962301576546568060e-10,
    -2.50507477628578072866e-8,
    2.75573136213857245213e-6,
    -1.98412698295895385996e-4,
    8.33333333332211858878e-3,
    -1.66666666666666307295e-1,
)
_COS_C = (
    -1.13585365213876817300e-11,
    2.08757008419747316778e-9,
    -2.75573141792967388112e-7,
    2.48015872888517045348e-5,
    -1.38888888888730564116e-3,
    4.16666666666665929218e-2,
)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def cos_sin_turn(u):
    """(cos 2 pi u, sin 2 pi u) for u in [0, 1), libm-free so the loop vectorises.

    Quadrant q = round(4u); u - q/4 is exact, r = 2 pi (u - q/4) in [-pi/4, pi/4];
    Cephes polynomials give sin r, cos r; the quadrant rotates them. Also exact for u in
    [-1/2, 1/2) (the field kernels' reduced turns).
    """
    q = floor_float(fma(4.0, u, 0.5))
    r = _TWO_PI * (u - 0.25 * q)
    r2 = r * r
    sp = _SIN_C[0]
    cp = _COS_C[0]
    for c in _SIN_C[1:]:
        sp = fma(sp, r2, c)
    for c in _COS_C[1:]:
        cp = fma(cp, r2, c)
    sin_r = fma(r * r2, sp, r)
    cos_r = fma(r2 * r2, cp, 1.0 - 0.5 * r2)
    quadrant = float_bits(q + _ROUND_MAGIC) & 3  # q mod 4, exactly
    swap = (quadrant & 1) == 1
    cos_value = sin_r if swap else cos_r
    sin_value = cos_r if swap else sin_r
    cos_value = -cos_value if ((quadrant + 1) & 2) != 0 else cos_value
    sin_value = -sin_value if (quadrant & 2) != 0 else sin_value
    return cos_value, sin_value


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def cos_turns(t):
    """cos 2 pi t for any real t: t - round(t) in [-1/2, 1/2) (exact), then cos_sin_turn."""
    return cos_sin_turn(t - floor_float(t + 0.5))[0]


# fdlibm __ieee754_log: log(1+f) = 2s + s R(s^2), s = f / (2 + f), |s| <= 0.1716.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG = (
    6.666666666666735130e-01,
    3.999999999940941908e-01,
    2.857142874366239149e-01,
    2.222219843214978396e-01,
    1.818357216161805012e-01,
    1.531383769920937332e-01,
    1.479819860511658591e-01,
)
_MANTISSA = np.int64(0x000FFFFFFFFFFFFF)
_SQRT_HALF_BITS = np.int64(0x3FE6A09E00000000)  # ~sqrt(2)/2, as in musl's log
_SHIFT_SQRT_HALF = np.int64(0x3FF0000000000000) - _SQRT_HALF_BITS


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def log_positive(x):
    """Natural log of a positive normal float64, libm-free (fdlibm, error < 1 ulp).

    x = 2^e m with m in [sqrt(2)/2, sqrt(2)) split off the bits without a branch (musl's
    offset trick); log x = e log 2 + log m.
    """
    bits = float_bits(np.float64(x)) + _SHIFT_SQRT_HALF
    e = bits_float((bits >> 52) | _TWO_52_BITS) - (_TWO_52 + 1023.0)  # exponent, exactly
    m = bits_float((bits & _MANTISSA) + _SQRT_HALF_BITS)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    t1 = w * fma(w, fma(w, _LG[5], _LG[3]), _LG[1])
    t2 = z * fma(w, fma(w, fma(w, _LG[6], _LG[4]), _LG[2]), _LG[0])
    hfsq = 0.5 * f * f
    # e ln2_hi is exact (ln2_hi has 32 trailing zero bits), so it may feed a sum.
    return e * _LN2_HI - ((hfsq - fma(s, hfsq + t1 + t2, e * _LN2_LO)) - f)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def stream_words(seed, network, stream, block):
    """The four uint32 words (as uint64) of block ``block`` of a network's stream."""
    s = np.uint64(seed)
    e = np.uint64(network)
    return philox4x32(
        np.uint64(block) & _MASK32,
        np.uint64(stream) & _MASK32,
        e & _MASK32,
        e >> _SHIFT32,
        s & _MASK32,
        s >> _SHIFT32,
    )


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def normal_block(seed, network, stream, block):
    """Four iid standard normals: block ``block`` of stream ``stream`` of a network."""
    r0, r1, r2, r3 = stream_words(seed, network, stream, block)
    rad0 = math.sqrt(-2.0 * log_positive(_uniform(r0)))
    rad1 = math.sqrt(-2.0 * log_positive(_uniform(r2)))
    c0, s0 = cos_sin_turn(_uniform(r1))
    c1, s1 = cos_sin_turn(_uniform(r3))
    return rad0 * c0, rad0 * s0, rad1 * c1, rad1 * s1


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def uniform_block(seed, network, stream, block):
    """Four iid uniforms on (0, 1): block ``block`` of stream ``stream``."""
    r0, r1, r2, r3 = stream_words(seed, network, stream, block)
    return _uniform(r0), _uniform(r1), _uniform(r2), _uniform(r3)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def fill_normal(out, seed, network, stream, scale):
    """Fill the flat array ``out`` with ``scale`` * standard normals of one stream:
    element m is lane m % 4 of ``normal_block`` m // 4.

    One pass, Philox and Box-Muller fused; everything inlines and is libm-free, so LLVM
    vectorises the loop across blocks.
    """
    m = out.size
    full = m // 4
    for j in range(full):
        n0, n1, n2, n3 = normal_block(seed, network, stream, j)
        out[4 * j] = scale * n0
        out[4 * j + 1] = scale * n1
        out[4 * j + 2] = scale * n2
        out[4 * j + 3] = scale * n3
    if 4 * full < m:
        last = normal_block(seed, network, stream, full)
        for i in range(m - 4 * full):
            out[4 * full + i] = scale * last[i]


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def fill_uniform(out, seed, network, stream, low, high):
    """Fill the flat array ``out`` with uniforms on (low, high) from one stream."""
    m = out.size
    width = high - low
    full = m // 4
    for j in range(full):
        u0, u1, u2, u3 = uniform_block(seed, network, stream, j)
        out[4 * j] = low + width * u0
        out[4 * j + 1] = low + width * u1
        out[4 * j + 2] = low + width * u2
        out[4 * j + 3] = low + width * u3
    if 4 * full < m:
        u = uniform_block(seed, network, stream, full)
        for i in range(m - 4 * full):
            out[4 * full + i] = low + width * u[i]
