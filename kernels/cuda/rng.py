"""Device twins of ``kernels/cpu/rng.py``: Philox4x32-10 + libm-free Box-Muller.

The device functions are compiled from the very Python source of the CPU scalar
functions (one definition of the generator), with only its intrinsics bound per target
(bitcasts, floor, fma: libdevice on the GPU, NumPy and exact rationals under the
simulator). So network e of seed s draws the same numbers on CPU and GPU, bit for bit:
every product that feeds a sum is an explicit ``fma`` (libdevice's IEEE fused
multiply-add on the GPU), division and square root are IEEE-rounded on both, and nothing
else is left for a compiler to contract.

Kernels (one thread per block of 4 numbers, like ``fill_normal``'s blocks):
    fill_normal_kernel(out, seed, network, stream, scale)
    fill_uniform_kernel(out, seed, network, stream, low, high)
"""

import math
from fractions import Fraction

import numpy as np
from numba import config, cuda

from ..cpu import rng as cpu_rng
from .device import device_twins

THREADS_PER_BLOCK = 128
# Scalar functions shared with the CPU, in dependency order (callees first).
_SHARED = (
    "philox4x32",
    "_uniform",
    "cos_sin_turn",
    "cos_turns",
    "log_positive",
    "stream_words",
    "normal_block",
    "uniform_block",
)


def exact_fma(a, b, c):
    """a b + c rounded once, in exact rational arithmetic (the simulator's ``cuda.fma`` is
    a b + c with two roundings)."""
    return np.float64(Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c)))


def _target_intrinsics():
    """The CPU intrinsics of ``kernels/cpu/rng.py`` bound for this target: bitcasts, floor
    to a float64, fused multiply-add."""
    if config.ENABLE_CUDASIM:
        return {
            "float_bits": lambda x: np.float64(x).view(np.int64),
            "bits_float": lambda b: np.int64(b).view(np.float64),
            "floor_float": lambda x: np.float64(math.floor(x)),
            "fma": exact_fma,
        }
    from numba.cuda import libdevice

    return {
        "float_bits": libdevice.double_as_longlong,
        "bits_float": libdevice.longlong_as_double,
        "floor_float": libdevice.floor,
        "fma": libdevice.fma,
    }


_device = device_twins(cpu_rng, _SHARED, _target_intrinsics())
normal_block = _device["normal_block"]
cos_turns = _device["cos_turns"]
uniform_block = _device["uniform_block"]
stream_words = _device["stream_words"]


@cuda.jit(device=True)
def store_normal_block(out, q, count, seed, network, stream, scale):
    """out[4q + lane] = scale * normal_block(..., q)[lane] for 4q + lane < count."""
    n0, n1, n2, n3 = normal_block(seed, network, stream, q)
    out[4 * q] = scale * n0
    if 4 * q + 1 < count:
        out[4 * q + 1] = scale * n1
    if 4 * q + 2 < count:
        out[4 * q + 2] = scale * n2
    if 4 * q + 3 < count:
        out[4 * q + 3] = scale * n3


@cuda.jit
def fill_normal_kernel(out, seed, network, stream, scale):
    """out[m] = scale * lane m % 4 of normal_block(seed, network, stream, m // 4)."""
    j = cuda.grid(1)
    if 4 * j < out.size:
        store_normal_block(out, j, out.size, seed, network, stream, scale)


@cuda.jit(device=True)
def store_uniform_block(out, q, count, seed, network, stream, low, high):
    """out[4q + lane] = low + (high - low) * uniform_block(..., q)[lane] for 4q + lane <
    count."""
    u0, u1, u2, u3 = uniform_block(seed, network, stream, q)
    width = high - low
    out[4 * q] = low + width * u0
    if 4 * q + 1 < count:
        out[4 * q + 1] = low + width * u1
    if 4 * q + 2 < count:
        out[4 * q + 2] = low + width * u2
    if 4 * q + 3 < count:
        out[4 * q + 3] = low + width * u3


@cuda.jit
def fill_uniform_kernel(out, seed, network, stream, low, high):
    """out[m] = low + (high - low) * lane m % 4 of uniform_block(..., m // 4)."""
    j = cuda.grid(1)
    if 4 * j < out.size:
        store_uniform_block(out, j, out.size, seed, network, stream, low, high)


def blocks_for(m, threads=THREADS_PER_BLOCK):
    """Grid size for an array of m numbers (one thread per 4)."""
    return max(1, ((m + 3) // 4 + threads - 1) // threads)


KERNELS = {"fill_normal_kernel": fill_normal_kernel, "fill_uniform_kernel": fill_uniform_kernel}
