"""Forward passes of one network, dense and projected (DESIGN.md §2, §5).

Both write the preactivations of every layer into one flat buffer ``zbuf``, input-major:
layer l occupies ``zbuf[offsets[l-1]:offsets[l]]`` as zt^(l) = (z^(l))^T (B x n_l), so
every per-neuron loop (matmul, activation, moments) runs over contiguous memory. Both
have the same argument list; ``act_code`` selects a built-in activation
(``activations.activate``).

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


@njit(fastmath=FASTMATH, cache=True, inline="always")
def apply_activation(act_code, zt, st):
    """st = act(zt) elementwise (both B x n)."""
    nb, n = zt.shape
    for a in range(nb):
        for i in range(n):
            st[a, i] = activate(act_code, zt[a, i])


@njit(fastmath=FASTMATH, cache=True)
def add_bias_and_activate(zt, cb, seed, network, layer, act_code, st):
    """zt += b (b_i ~ N(0, cb), shared by all inputs); st = act(zt). Both B x n."""
    nb, n = zt.shape
    if cb > 0.0:
        b = np.empty(n)
        fill_normal(b, seed, network, stream_id(layer, PURPOSE_BIAS), math.sqrt(cb))
        for a in range(nb):
            for i in range(n):
                zt[a, i] += b[i]
    # Literal codes for the piecewise-linear activations: after inlining LLVM folds the
    # switch in ``activate`` and vectorises; the others call libm element by element.
    if act_code == 0:
        apply_activation(0, zt, st)
    elif act_code == 1:
        apply_activation(1, zt, st)
    elif act_code == 2:
        apply_activation(2, zt, st)
    else:
        apply_activation(act_code, zt, st)


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def dense_matmul(w, st, zt):
    """zt = (w @ st^T)^T for w (n_out x n_in) and a thin input-major st (B x n_in),
    without BLAS.

    Explicit loops keep BLAS's own thread pool out of the parallel kernels (it would
    oversubscribe the cores); with B small the product is cheap next to drawing w.
    """
    n_out, n_in = w.shape
    nb = st.shape[0]
    for i in range(n_out):
        for a in range(nb):
            acc = 0.0
            for j in range(n_in):
                acc += w[i, j] * st[a, j]
            zt[a, i] = acc


@njit(cache=True)
def dense_workspace_size(widths, nb):
    """Elements of ``work`` needed by ``forward_dense_one``: one W and one S buffer."""
    largest_w = 0
    for layer in range(1, widths.size):
        largest_w = max(largest_w, widths[layer] * widths[layer - 1])
    return largest_w + widths.max() * nb


@njit(fastmath=FASTMATH, cache=True)
def forward_dense_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf, offsets,
                      work):
    """Dense forward pass of network ``network``: explicit W for every layer.

    ``work``: scratch of ``dense_workspace_size`` elements of zbuf's dtype, reused across
    networks by the batch drivers (no allocation per layer).
    """
    n_layers = widths.size - 1
    nb = xt.shape[1]
    w_size = work.size - widths.max() * nb
    s_flat = work[w_size:]
    st = s_flat[:nb * xt.shape[0]].reshape((nb, xt.shape[0]))
    st[:, :] = xt.T
    for layer in range(1, n_layers + 1):
        n_in = widths[layer - 1]
        n_out = widths[layer]
        w = work[:n_out * n_in].reshape((n_out, n_in))
        draw_dense_weights(w, init_code, cw[layer - 1], seed, network, layer)
        zt = zbuf[offsets[layer - 1]:offsets[layer]].reshape((nb, n_out))
        dense_matmul(w, st, zt)
        st = s_flat[:nb * n_out].reshape((nb, n_out))
        add_bias_and_activate(zt, cb[layer - 1], seed, network, layer, act_code, st)


@njit(fastmath=FASTMATH, cache=True)
def small_matmul(ft, r, scale, zt):
    """zt = scale * (f @ r)^T for f = ft^T (ft k x n) and a small r (k x B), summed in
    float64 in the order c = 0..k-1.

    k = B = 4 (the common case, R1) gets fixed trip counts that LLVM vectorises over the
    neurons i; both branches sum in the same order.
    """
    k, n = ft.shape
    nb = r.shape[1]
    if k == 4 and nb == 4:
        for a in range(4):
            r0 = r[0, a]
            r1 = r[1, a]
            r2 = r[2, a]
            r3 = r[3, a]
            for i in range(n):
                zt[a, i] = scale * (0.0 + ft[0, i] * r0 + ft[1, i] * r1 + ft[2, i] * r2
                                    + ft[3, i] * r3)
        return
    for a in range(nb):
        for i in range(n):
            acc = 0.0
            for c in range(k):
                acc += ft[c, i] * r[c, a]
            zt[a, i] = scale * acc


@njit(cache=True)
def projected_workspace_size(widths, nb):
    """Elements of ``work`` needed by ``forward_projected_one``: S, the Gaussian or Haar
    factor (each up to n_max x B) and R (B x B)."""
    return 2 * widths.max() * nb + nb * nb


@njit(fastmath=FASTMATH, cache=True)
def forward_projected_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf, offsets,
                          work):
    """Exact projected forward pass (DESIGN.md §5), O(n B^2) per layer.

    With the thin QR S = Q R (Q n_in x k orthonormal, k = min(n_in, B), exact for any
    rank of S), W S = (W Q) R and W Q has a known law:
      Gaussian:   iid N(0, cw/n_in) entries, n_out x k, drawn column by column;
      orthogonal: s * (Haar n_out x k frame) if n_out >= n_in, else
                  s * (first n_out rows of a Haar n_in x k frame).
    ``work``: scratch of ``projected_workspace_size`` elements of zbuf's dtype, reused
    across networks by the batch drivers (no allocation per layer).
    """
    n_layers = widths.size - 1
    nb = xt.shape[1]
    n_max = widths.max()
    s_flat = work[:n_max * nb]
    factor_flat = work[n_max * nb:2 * n_max * nb]
    r_flat = work[2 * n_max * nb:]
    beta = np.empty(nb)
    rdiag = np.empty(nb)
    st = s_flat[:nb * xt.shape[0]].reshape((nb, xt.shape[0]))
    st[:, :] = xt.T
    for layer in range(1, n_layers + 1):
        n_in = widths[layer - 1]
        n_out = widths[layer]
        k = min(n_in, nb)
        s = st.T  # S (n_in x B) column-major: contiguous reflectors
        householder_factor(s, beta[:k], rdiag[:k])
        r = r_flat[:k * nb].reshape((k, nb))
        extract_r(s, rdiag[:k], r)
        zt = zbuf[offsets[layer - 1]:offsets[layer]].reshape((nb, n_out))
        if init_code == INIT_GAUSSIAN:
            gt = factor_flat[:k * n_out].reshape((k, n_out))  # G^T: G's columns contiguous
            fill_normal(gt.ravel(), seed, network, stream_id(layer, PURPOSE_WEIGHTS), 1.0)
            small_matmul(gt, r, math.sqrt(cw[layer - 1] / n_in), zt)
        else:
            m = max(n_out, n_in)
            frame_t = factor_flat[:k * m].reshape((k, m))
            haar_frame_from_stream(m, k, seed, network, stream_id(layer, PURPOSE_FRAME), frame_t.T)
            small_matmul(frame_t[:, :n_out], r, orthogonal_scale(cw[layer - 1], n_in, n_out), zt)
        st = s_flat[:nb * n_out].reshape((nb, n_out))
        add_bias_and_activate(zt, cb[layer - 1], seed, network, layer, act_code, st)
