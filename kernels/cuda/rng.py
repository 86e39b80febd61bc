"""Device twins of ``kernels/cpu/rng.py``: Philox4x32-10 + libm-free Box-Muller.

The device functions are compiled from the very Python source of the CPU scalar
functions (one definition of the generator), with only the float64 <-> int64 bitcasts
bound per target: libdevice on the GPU, NumPy views under the simulator. So network e of
seed s draws the same numbers on CPU and GPU (to the last bit up to FMA contraction,
which both targets may apply to the polynomials).

Kernels (one thread per block of 4 numbers, like ``fill_normal``'s blocks):
    fill_normal_kernel(out, seed, network, stream, scale)
    fill_uniform_kernel(out, seed, network, stream, low, high)
"""
import types

import numpy as np
from numba import config, cuda

from ..cpu import rng as cpu_rng

THREADS_PER_BLOCK = 128
# Scalar functions shared with the CPU, in dependency order (callees first).
_SHARED = ("philox4x32", "_uniform", "cos_sin_turn", "log_positive", "stream_words",
           "normal_block", "uniform_block")


def _bitcasts():
    if config.ENABLE_CUDASIM:
        return (lambda x: np.float64(x).view(np.int64),
                lambda b: np.int64(b).view(np.float64))
    from numba.cuda import libdevice
    return libdevice.double_as_longlong, libdevice.longlong_as_double


def _device_functions():
    namespace = dict(vars(cpu_rng))
    namespace["float_bits"], namespace["bits_float"] = _bitcasts()
    compiled = {}
    for name in _SHARED:
        py = getattr(cpu_rng, name).py_func
        clone = types.FunctionType(py.__code__, namespace, py.__name__, py.__defaults__,
                                   py.__closure__)
        compiled[name] = namespace[name] = cuda.jit(device=True)(clone)
    return compiled


_device = _device_functions()
normal_block = _device["normal_block"]
uniform_block = _device["uniform_block"]
stream_words = _device["stream_words"]


@cuda.jit
def fill_normal_kernel(out, seed, network, stream, scale):
    """out[m] = scale * lane m % 4 of normal_block(seed, network, stream, m // 4)."""
    j = cuda.grid(1)
    m = out.size
    if 4 * j >= m:
        return
    n0, n1, n2, n3 = normal_block(seed, network, stream, j)
    out[4 * j] = scale * n0
    if 4 * j + 1 < m:
        out[4 * j + 1] = scale * n1
    if 4 * j + 2 < m:
        out[4 * j + 2] = scale * n2
    if 4 * j + 3 < m:
        out[4 * j + 3] = scale * n3


@cuda.jit
def fill_uniform_kernel(out, seed, network, stream, low, high):
    """out[m] = low + (high - low) * lane m % 4 of uniform_block(..., m // 4)."""
    j = cuda.grid(1)
    m = out.size
    if 4 * j >= m:
        return
    u0, u1, u2, u3 = uniform_block(seed, network, stream, j)
    width = high - low
    out[4 * j] = low + width * u0
    if 4 * j + 1 < m:
        out[4 * j + 1] = low + width * u1
    if 4 * j + 2 < m:
        out[4 * j + 2] = low + width * u2
    if 4 * j + 3 < m:
        out[4 * j + 3] = low + width * u3


def blocks_for(m, threads=THREADS_PER_BLOCK):
    """Grid size for an array of m numbers (one thread per 4)."""
    return max(1, ((m + 3) // 4 + threads - 1) // threads)


KERNELS = {"fill_normal_kernel": fill_normal_kernel, "fill_uniform_kernel": fill_uniform_kernel}
