"""Projected forward pass and per-layer statistics on the GPU: one thread block per network.

The twin of ``moments.batch_statistics`` for method "projected" with Gaussian weights
(DESIGN.md §5; the CPU docstrings in ``kernels/cpu/forward.py`` give the formulas): per
layer, the block runs the thin Householder QR of S with the same canonical rules as
``haar.householder_factor``/``extract_r`` (dependent columns zeroed, diag R >= 0), draws
G^T from the same Philox stream positions as the CPU (number m of stream (l, weights) is
lane m % 4 of block m // 4), forms zt = sqrt(cw/n_in) (G R)^T + b, and reduces
[G | Q | GG] over neurons with fixed-order tree reductions in shared memory (THREADS
must stay a power of two). So network e
of seed s is the CPU's network e, and its statistics agree with the CPU's to rounding
(summation order differs).

Scratch lives in global memory, one slab per block: s_buf, g_buf, z_buf (blocks, n_max * B).
"""
import math

import numpy as np
from numba import cuda, float64

from ..cpu import activations as cpu_activations
from ..cpu import haar as cpu_haar
from ..cpu.rng import PURPOSE_BIAS, PURPOSE_WEIGHTS
from .device import device_twins
from .rng import store_normal_block

THREADS = 128          # threads per block (a power of two: tree reductions)
MAX_B = 8              # inputs per network (shared-memory bound)

_act = device_twins(cpu_activations, ("sigmoid", "activate"))
activate = _act["activate"]
extract_r = device_twins(cpu_haar, ("extract_r",))["extract_r"]  # canonical R, diag >= 0
RANK_TOL_FLOAT64 = cpu_haar.RANK_TOL_FLOAT64


@cuda.jit(device=True)
def block_sum(value, shared):
    """Sum of ``value`` over the block's threads (fixed tree order); every thread gets it.
    ``shared``: (THREADS,) float64."""
    t = cuda.threadIdx.x
    shared[t] = value
    cuda.syncthreads()
    width = THREADS // 2
    while width > 0:
        if t < width:
            shared[t] += shared[t + width]
        cuda.syncthreads()
        width //= 2
    total = shared[0]
    cuda.syncthreads()
    return total


@cuda.jit(device=True)
def fill_normals(out, count, seed, network, stream, scale):
    """out[m] = scale * normal m of the stream, m < count, threads striding over blocks."""
    q = cuda.threadIdx.x
    while 4 * q < count:
        store_normal_block(out, q, count, seed, network, stream, scale)
        q += THREADS
    cuda.syncthreads()


@cuda.jit(device=True)
def householder_r(s, n_in, nb, k, r, rdiag, shared, small):
    """Canonical R (k x B, in ``r``) of S; s[a * n_in + i] = S_ia is overwritten by the
    reflectors. ``shared``: (THREADS,) reduction scratch; ``small``: shared (>= 3)."""
    t = cuda.threadIdx.x
    for j in range(k):
        part = 0.0
        i = j + t
        while i < n_in:
            part += s[j * n_in + i] * s[j * n_in + i]
            i += THREADS
        norm2 = block_sum(part, shared)
        if t == 0:
            above2 = 0.0
            for i2 in range(j):
                above2 += s[j * n_in + i2] * s[j * n_in + i2]
            x0 = s[j * n_in + j]
            if norm2 <= RANK_TOL_FLOAT64 * RANK_TOL_FLOAT64 * (above2 + norm2):
                small[0] = 0.0   # beta: H_j = I, column zeroed below
                small[1] = 0.0   # R_jj
                small[2] = 1.0   # flag: zero the sub-column
            else:
                norm = math.sqrt(norm2)
                alpha = -norm if x0 >= 0 else norm
                v0 = x0 - alpha
                small[0] = 2.0 / (norm2 - x0 * x0 + v0 * v0)
                small[1] = alpha
                small[2] = 0.0
                s[j * n_in + j] = v0
        cuda.syncthreads()
        beta = small[0]
        if small[2] != 0.0:
            i = j + t
            while i < n_in:
                s[j * n_in + i] = 0.0
                i += THREADS
        if t == 0:
            rdiag[j] = small[1]
        for c in range(j + 1, nb):
            part = 0.0
            i = j + t
            while i < n_in:
                part += s[j * n_in + i] * s[c * n_in + i]
                i += THREADS
            f = beta * block_sum(part, shared)
            i = j + t
            while i < n_in:
                s[c * n_in + i] -= f * s[j * n_in + i]
                i += THREADS
            cuda.syncthreads()
    if t == 0:
        extract_r(s[:nb * n_in].reshape((nb, n_in)).T, rdiag[:k], r[:k, :nb])
    cuda.syncthreads()


@cuda.jit
def projected_statistics_kernel(first, seed, xt, widths, cw, cb, act_code, pair_a, pair_b,
                                quad_p1, quad_p2, four_point, stats, s_buf, g_buf, z_buf):
    """stats[t, l-1, :] = [G | Q | GG] of layer l of network first + t (block t)."""
    net = cuda.blockIdx.x
    t = cuda.threadIdx.x
    if net >= stats.shape[0]:
        return
    network = first + net
    nb = xt.shape[1]
    shared = cuda.shared.array(THREADS, float64)
    r = cuda.shared.array((MAX_B, MAX_B), float64)
    rdiag = cuda.shared.array(MAX_B, float64)
    small = cuda.shared.array(4, float64)
    s = s_buf[net]
    g = g_buf[net]
    z = z_buf[net]
    n0 = xt.shape[0]
    i = t
    while i < n0:
        for a in range(nb):
            s[a * n0 + i] = xt[i, a]
        i += THREADS
    cuda.syncthreads()
    n_pairs = pair_a.size
    n_quads = quad_p1.size if four_point else 0
    for layer in range(1, widths.size):
        n_in = widths[layer - 1]
        n_out = widths[layer]
        k = min(n_in, nb)
        householder_r(s, n_in, nb, k, r, rdiag, shared, small)
        fill_normals(g, k * n_out, seed, network, np.uint64(layer * 8 + PURPOSE_WEIGHTS), 1.0)
        scale = math.sqrt(cw[layer - 1] / n_in)
        i = t
        while i < n_out:
            for a in range(nb):
                acc = 0.0
                for c in range(k):
                    acc += g[c * n_out + i] * r[c, a]
                z[a * n_out + i] = scale * acc
            i += THREADS
        cuda.syncthreads()
        if cb[layer - 1] > 0.0:
            fill_normals(g, n_out, seed, network, np.uint64(layer * 8 + PURPOSE_BIAS),
                         math.sqrt(cb[layer - 1]))
            i = t
            while i < n_out:
                for a in range(nb):
                    z[a * n_out + i] += g[i]
                i += THREADS
            cuda.syncthreads()
        out = stats[net, layer - 1]
        for u in range(n_pairs + n_quads):
            part = 0.0
            i = t
            while i < n_out:
                if u < n_pairs:
                    part += z[pair_a[u] * n_out + i] * z[pair_b[u] * n_out + i]
                else:
                    p1 = quad_p1[u - n_pairs]
                    p2 = quad_p2[u - n_pairs]
                    part += (z[pair_a[p1] * n_out + i] * z[pair_b[p1] * n_out + i]
                             * (z[pair_a[p2] * n_out + i] * z[pair_b[p2] * n_out + i]))
                i += THREADS
            total = block_sum(part, shared)
            if t == 0:
                out[u] = total / n_out
        if four_point and t == 0:
            idx = n_pairs + n_quads
            for t1 in range(n_pairs):
                for t2 in range(t1, n_pairs):
                    out[idx] = out[t1] * out[t2]
                    idx += 1
        i = t
        while i < n_out:
            for a in range(nb):
                s[a * n_out + i] = activate(act_code, z[a * n_out + i])
            i += THREADS
        cuda.syncthreads()


KERNELS = {"projected_statistics_kernel": projected_statistics_kernel}
