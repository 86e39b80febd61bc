"""Forward passes of one network, dense and projected (docs/projected-sampler.md).

The kernels work one layer at a time, so callers can consume each layer while it is in
cache (``moments.batch_statistics``). Arrays are input-major: the activations
st = S^T (B x n_{l-1}) and preactivations zt = (z^(l))^T (B x n_l), so every
per-neuron loop (matmul, activation, moments) runs over contiguous memory.
``dense_preactivation`` and ``projected_preactivation`` have the same argument list;
``activate_layer`` then gives the next layer's input; ``forward_one`` chains them into
the flat buffer of all layers.

Conventions (docs/conventions.md): z^(1) = W^(1) x + b^(1),
z^(l+1) = W^(l+1) act(z^(l)) + b^(l+1) (a residual layer: ``add_residual`` then makes it
xi z^(l) + gamma (W^(l+1) act(z^(l)) + b^(l+1)), docs/conventions.md#residual); biases
N(0, cb_l); weight entries of variance cw_l / n_{l-1}:
  INIT_GAUSSIAN    iid N(0, cw/n_in)
  INIT_ORTHOGONAL  sqrt(cw * max(1, n_out/n_in)) * Haar (orthonormal columns or rows)
  INIT_UNIFORM     iid U(-a, a), a = sqrt(3 cw / n_in)  (dense path only)
"""

import math

import numpy as np
from numba import njit

from .activations import activate
from .codes import INIT_GAUSSIAN, INIT_UNIFORM
from .config import FASTMATH, FASTMATH_REDUCTIONS
from .haar import (
    column_exponent,
    extract_r,
    haar_frame_from_stream,
    haar_matrix_from_stream,
    householder_factor,
    scale_column,
)
from .rng import PURPOSE_BIAS, PURPOSE_FRAME, PURPOSE_WEIGHTS, fill_normal, fill_uniform, stream_id


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
def activate_layer(act_code, zt, st):
    """st = act(zt) (both B x n), ``act_code`` a built-in activation code.

    Literal codes for the piecewise-linear activations: after inlining LLVM folds the
    switch in ``activate`` and vectorises; the others call libm element by element.
    """
    if act_code == 0:
        apply_activation(0, zt, st)
    elif act_code == 1:
        apply_activation(1, zt, st)
    elif act_code == 2:
        apply_activation(2, zt, st)
    else:
        apply_activation(act_code, zt, st)


@njit(fastmath=FASTMATH, cache=True)
def add_bias(zt, cb, seed, network, layer):
    """zt += b, b_i ~ N(0, cb) shared by all inputs (nothing drawn when cb == 0)."""
    if cb > 0.0:
        nb, n = zt.shape
        b = np.empty(n)
        fill_normal(b, seed, network, stream_id(layer, PURPOSE_BIAS), math.sqrt(cb))
        for a in range(nb):
            for i in range(n):
                zt[a, i] += b[i]


@njit(cache=True, inline="always")
def mixes_residual(xi, gamma, layer):
    """Whether layer ``layer`` (>= 1) has a residual connection or a gamma != 1 (xi,
    gamma: (L,) per layer); every other layer is left exactly as the kernel wrote it."""
    return layer >= 2 and (xi[layer - 1] != 0.0 or gamma[layer - 1] != 1.0)


@njit(fastmath=FASTMATH, cache=True)
def add_residual(zt, zt_prev, xi, gamma):
    """zt = xi zt_prev + gamma zt (all B x n): the residual connection of a layer for which
    a preactivation kernel left b + W S in zt, zt_prev = z^(l-1) (not read when xi == 0).
    Exact in law on both paths: the projected sampler draws W S in law given S alone."""
    nb, n = zt.shape
    if xi != 0.0:
        for a in range(nb):
            for i in range(n):
                zt[a, i] = xi * zt_prev[a, i] + gamma * zt[a, i]
    else:
        for a in range(nb):
            for i in range(n):
                zt[a, i] = gamma * zt[a, i]


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
    """Scratch elements ``dense_preactivation`` needs: one W."""
    largest_w = 0
    for layer in range(1, widths.size):
        largest_w = max(largest_w, widths[layer] * widths[layer - 1])
    return largest_w


@njit(fastmath=FASTMATH, cache=True)
def dense_preactivation(network, seed, layer, cw, cb, init_code, st, zt, scratch):
    """zt = (W S + b)^T for layer ``layer`` of network ``network``, explicit W.

    st: input activations (B x n_in); zt: output (B x n_out); scratch: at least
    ``dense_workspace_size`` elements of zt's dtype.
    """
    n_in = st.shape[1]
    n_out = zt.shape[1]
    w = scratch[: n_out * n_in].reshape((n_out, n_in))
    draw_dense_weights(w, init_code, cw, seed, network, layer)
    dense_matmul(w, st, zt)
    add_bias(zt, cb, seed, network, layer)


@njit(fastmath=FASTMATH, cache=True)
def small_matmul(ft, r, scale, zt):
    """zt = scale * (f @ r)^T for f = ft^T (ft k x n) and a small r (k x B), summed in
    float64 in the order c = 0..k-1.

    k = B = 4 (the common case, R1) gets fixed trip counts that LLVM vectorises over the
    neurons i; any other k runs c outermost over contiguous rows of ft into a float64 row
    of partial sums (vectorised over i: a loop over c innermost strides by n and, for
    k = B in the hundreds, misses the cache at every step); both sum in the same order.
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
                zt[a, i] = scale * (
                    0.0 + ft[0, i] * r0 + ft[1, i] * r1 + ft[2, i] * r2 + ft[3, i] * r3
                )
        return
    acc = np.empty(n)  # float64 partial sums of one output row, c outermost: contiguous
    for a in range(nb):
        acc[:] = 0.0
        for c in range(k):
            row = ft[c]
            r_ca = r[c, a]
            for i in range(n):
                acc[i] += row[i] * r_ca
        for i in range(n):
            zt[a, i] = scale * acc[i]


@njit(cache=True)
def projected_workspace_size(widths, nb):
    """Scratch elements ``projected_preactivation`` needs: the Gaussian or Haar factor
    (up to n_max x B), R (B x B), beta, diag(R) and the column exponents (B each)."""
    return widths.max() * nb + nb * nb + 3 * nb


@njit(cache=True, inline="always")
def projected_scratch(scratch, nb, k, m):
    """Views of ``projected_preactivation``'s scratch for a layer with k = min(n_in, B)
    and m = max(n_in, n_out): (factor (k m), R (k x B), beta (k), diag R (k)). After the
    call, factor[:k n_out] holds G^T (Gaussian: W Q = sqrt(cw/n_in) G) and beta the
    reflector coefficients of the QR left in st. (The last B elements of a scratch of
    ``projected_workspace_size`` hold the column exponents, outside these views.)"""
    end = k * m
    return (
        scratch[:end],
        scratch[end : end + k * nb].reshape((k, nb)),
        scratch[end + nb * nb : end + nb * nb + k],
        scratch[end + nb * nb + nb : end + nb * nb + nb + k],
    )


@njit(fastmath=FASTMATH, cache=True)
def projected_preactivation(network, seed, layer, cw, cb, init_code, st, zt, scratch):
    """zt = (W S + b)^T for layer ``layer`` of network ``network``, exact projected
    sampler (docs/projected-sampler.md), O(n B^2): st (B x n_in) is overwritten by its QR.

    With the thin QR S = Q R (Q n_in x k orthonormal, k = min(n_in, B), exact for any
    rank of S), W S = (W Q) R and W Q has a known law:
      Gaussian:   iid N(0, cw/n_in) entries, n_out x k, drawn column by column;
      orthogonal: s * (Haar n_out x k frame) if n_out >= n_in, else
                  s * (first n_out rows of a Haar n_in x k frame).
    A column a of S of extreme magnitude (``haar.column_exponent`` e_a != 0) is scaled
    by 2^-e_a before the QR and column a of W S by 2^e_a after it, so R and F R stay
    representable wherever z is; powers of two are exact, so z is what the unscaled
    arithmetic gives whenever that does not over- or underflow.
    scratch: at least ``projected_workspace_size`` elements of zt's dtype.
    """
    nb, n_in = st.shape
    n_out = zt.shape[1]
    k = min(n_in, nb)
    m = max(n_out, n_in)
    factor, r, beta, rdiag = projected_scratch(scratch, nb, k, m)
    exponents = scratch[scratch.size - nb :]
    for a in range(nb):
        e = column_exponent(st[a])
        exponents[a] = e
        if e != 0:
            scale_column(st[a], -e)
    s = st.T  # S (n_in x B) column-major: contiguous reflectors
    householder_factor(s, beta, rdiag)
    extract_r(s, rdiag, r)
    if init_code == INIT_GAUSSIAN:
        gt = factor[: k * n_out].reshape((k, n_out))  # G^T: G's columns contiguous
        fill_normal(gt.ravel(), seed, network, stream_id(layer, PURPOSE_WEIGHTS), 1.0)
        small_matmul(gt, r, math.sqrt(cw / n_in), zt)
    else:
        frame_t = factor.reshape((k, m))
        haar_frame_from_stream(m, k, seed, network, stream_id(layer, PURPOSE_FRAME), frame_t.T)
        small_matmul(frame_t[:, :n_out], r, orthogonal_scale(cw, n_in, n_out), zt)
    for a in range(nb):
        if exponents[a] != 0.0:
            scale_column(zt[a], int(exponents[a]))
    add_bias(zt, cb, seed, network, layer)
