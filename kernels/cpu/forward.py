"""Forward passes of one network, dense and projected (DESIGN.md §2, §5).

Both write the preactivations z^(l) (n_l x B, neuron-major) of every layer into one flat
buffer ``zbuf``; layer l occupies ``zbuf[offsets[l-1]:offsets[l]]``. Both have the same
argument list; ``act_code`` selects a built-in activation (``activations.activate``).

Conventions: z^(1) = W^(1) x + b^(1), z^(l+1) = W^(l+1) act(z^(l)) + b^(l+1); biases
N(0, cb_l); weight entries of variance cw_l / n_{l-1}:
  INIT_GAUSSIAN    iid N(0, cw/n_in)
  INIT_ORTHOGONAL  sqrt(cw * max(1, n_out/n_in)) * Haar (orthonormal columns or rows)
  INIT_UNIFORM     iid U(-a, a), a = sqrt(3 cw / n_in)  (dense path only)
"""
import math

import numpy as np
from numba import njit

from .activations import activate
from .config import FASTMATH, FASTMATH_REDUCTIONS
from .haar import extract_r, haar_frame_from_stream, haar_matrix_from_stream, householder_factor
from .rng import PURPOSE_BIAS, PURPOSE_FRAME, PURPOSE_WEIGHTS, fill_normal, fill_uniform, stream_id

INIT_GAUSSIAN = 0
INIT_ORTHOGONAL = 1
INIT_UNIFORM = 2


@njit(fastmath=FASTMATH, cache=True)
def orthogonal_scale(cw, n_in, n_out):
    """s = sqrt(cw * max(1, n_out / n_in)): entry variance cw / n_in for Haar weights."""
    return math.sqrt(cw * max(1.0, n_out / n_in))


@njit(fastmath=FASTMATH, cache=True)
def draw_dense_weights(w, init_code, cw, seed, network, layer):
    """Explicit weight matrix ``w`` (n_out x n_in) of one layer of one network."""
    n_out, n_in = w.shape
    stream = stream_id(layer, PURPOSE_WEIGHTS)
    if init_code == INIT_GAUSSIAN:
        fill_normal(w.ravel(), seed, network, stream, math.sqrt(cw / n_in))
    elif init_code == INIT_UNIFORM:
        a = math.sqrt(3.0 * cw / n_in)
        fill_uniform(w.ravel(), seed, network, stream, -a, a)
    else:
        h = np.empty((n_out, n_in))
        haar_matrix_from_stream(n_out, n_in, seed, network, stream, h)
        s = orthogonal_scale(cw, n_in, n_out)
        for i in range(n_out):
            for j in range(n_in):
                w[i, j] = s * h[i, j]


@njit(fastmath=FASTMATH, cache=True)
def add_bias_and_activate(z, cb, seed, network, layer, act_code, s):
    """z += b (b_i ~ N(0, cb), shared by all inputs); s = act(z)."""
    n, nb = z.shape
    if cb > 0.0:
        b = np.empty(n)
        fill_normal(b, seed, network, stream_id(layer, PURPOSE_BIAS), math.sqrt(cb))
        for i in range(n):
            for a in range(nb):
                z[i, a] += b[i]
    for i in range(n):
        for a in range(nb):
            s[i, a] = activate(act_code, z[i, a])


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def dense_matmul(w, s, z):
    """z = w @ s for w (n_out x n_in) and a thin s (n_in x B), without BLAS.

    Explicit loops keep BLAS's own thread pool out of the parallel kernels (it would
    oversubscribe the cores); with B small the product is cheap next to drawing w.
    """
    n_out, n_in = w.shape
    nb = s.shape[1]
    st = np.empty((nb, n_in), s.dtype)
    for j in range(n_in):
        for a in range(nb):
            st[a, j] = s[j, a]
    for i in range(n_out):
        for a in range(nb):
            acc = 0.0
            for j in range(n_in):
                acc += w[i, j] * st[a, j]
            z[i, a] = acc


@njit(fastmath=FASTMATH, cache=True)
def forward_dense_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf, offsets):
    """Dense forward pass of network ``network``: explicit W for every layer."""
    n_layers = widths.size - 1
    nb = xt.shape[1]
    s = xt.astype(zbuf.dtype)
    for layer in range(1, n_layers + 1):
        n_in = widths[layer - 1]
        n_out = widths[layer]
        w = np.empty((n_out, n_in), zbuf.dtype)
        draw_dense_weights(w, init_code, cw[layer - 1], seed, network, layer)
        z = zbuf[offsets[layer - 1]:offsets[layer]].reshape((n_out, nb))
        dense_matmul(w, s, z)
        s = np.empty((n_out, nb), zbuf.dtype)
        add_bias_and_activate(z, cb[layer - 1], seed, network, layer, act_code, s)


@njit(fastmath=FASTMATH, cache=True)
def small_matmul(f, r, scale, z):
    """z = scale * f @ r for a tall f (n x k) and a small r (k x B), summed in float64.

    k = B = 4 (the common case, R1) gets fixed trip counts that LLVM unrolls and
    vectorises, about 4x faster than the generic loop; both sum in the same order.
    """
    n, k = f.shape
    nb = r.shape[1]
    if k == 4 and nb == 4:
        for i in range(n):
            f0 = f[i, 0]
            f1 = f[i, 1]
            f2 = f[i, 2]
            f3 = f[i, 3]
            for a in range(4):
                z[i, a] = scale * (0.0 + f0 * r[0, a] + f1 * r[1, a] + f2 * r[2, a]
                                   + f3 * r[3, a])
        return
    for i in range(n):
        for a in range(nb):
            acc = 0.0
            for c in range(k):
                acc += f[i, c] * r[c, a]
            z[i, a] = scale * acc


@njit(fastmath=FASTMATH, cache=True)
def forward_projected_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf, offsets):
    """Exact projected forward pass (DESIGN.md §5), O(n B^2) per layer.

    With the thin QR S = Q R (Q n_in x k orthonormal, k = min(n_in, B), exact for any
    rank of S), W S = (W Q) R and W Q has a known law:
      Gaussian:   iid N(0, cw/n_in) entries, n_out x k;
      orthogonal: s * (Haar n_out x k frame) if n_out >= n_in, else
                  s * (first n_out rows of a Haar n_in x k frame).
    """
    n_layers = widths.size - 1
    nb = xt.shape[1]
    s = np.empty((nb, xt.shape[0]), zbuf.dtype).T  # column-major: contiguous reflectors
    s[:, :] = xt
    for layer in range(1, n_layers + 1):
        n_in = widths[layer - 1]
        n_out = widths[layer]
        k = min(n_in, nb)
        beta = np.empty(k)
        rdiag = np.empty(k)
        householder_factor(s, beta, rdiag)
        r = np.empty((k, nb), zbuf.dtype)
        extract_r(s, rdiag, r)
        z = zbuf[offsets[layer - 1]:offsets[layer]].reshape((n_out, nb))
        if init_code == INIT_GAUSSIAN:
            g = np.empty((n_out, k), zbuf.dtype)
            fill_normal(g.ravel(), seed, network, stream_id(layer, PURPOSE_WEIGHTS), 1.0)
            small_matmul(g, r, math.sqrt(cw[layer - 1] / n_in), z)
        else:
            m = max(n_out, n_in)
            frame = np.empty((k, m)).T
            haar_frame_from_stream(m, k, seed, network, stream_id(layer, PURPOSE_FRAME), frame)
            small_matmul(frame[:n_out], r, orthogonal_scale(cw[layer - 1], n_in, n_out), z)
        s = np.empty((nb, n_out), zbuf.dtype).T
        add_bias_and_activate(z, cb[layer - 1], seed, network, layer, act_code, s)
