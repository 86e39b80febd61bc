"""Forward passes on the GPU, dense and projected, one thread block per network (threads
striding over neurons by the launched block size, ``block.block_threads``).

Twins of ``kernels/cpu/forward.py`` (docs/projected-sampler.md; the CPU docstrings give the
formulas and normalisations): the same random-stream positions (number m of stream
(layer, purpose) is lane m % 4 of block m // 4), the same canonical QR (dependent
columns zeroed, diag R >= 0) and the same order of the small sums, so network e of seed
s is the CPU's network e and its preactivations agree with the CPU's to rounding.

Buffers are flat and input-major like the CPU's: activations s[a n_in + i] (= S
column-major, the layout the QR wants) and preactivations z[a n_out + i]. Each block gets
one row of a float64 ``work`` array cut by ``work_layout``.
"""

import math

import numpy as np
from numba import cuda, int32

from ..cpu import activations as cpu_activations
from ..cpu import forward as cpu_forward
from ..cpu.codes import INIT_GAUSSIAN, INIT_ORTHOGONAL, INIT_UNIFORM, METHOD_DENSE
from ..cpu import rng as cpu_rng
from ..cpu.rng import PURPOSE_BIAS, PURPOSE_FRAME, PURPOSE_WEIGHTS
from .block import fill_normals, fill_uniforms
from .device import device_twins
from .haar import (
    canonical_r,
    column_exponent,
    haar_frame_from_stream,
    haar_matrix_from_stream,
    householder_factor,
    scale_column,
)

MAX_B = 8  # inputs per network (R lives in shared memory)
_act = device_twins(cpu_activations, ("sigmoid", "activate", "activate_derivative"))
activate = _act["activate"]
activate_derivative = _act["activate_derivative"]
stream_id = device_twins(cpu_rng, ("stream_id",))["stream_id"]
mixes_residual = device_twins(cpu_forward, ("mixes_residual",))["mixes_residual"]


def work_layout(method_code, init_code, widths, nb, residual=False):
    """Offsets (int64[9]) of s, z, factor, q, beta, rdiag, bias, prev and the end, in one
    float64 work row per network: s, z (n_max B each); factor: W (dense) or G^T / the Haar
    buffer (projected); q: the Haar Q (orthogonal weights only); beta, rdiag (2 n_max each:
    the QR of S and the Haar QR); bias (n_max); prev: z^(l-1) of a residual connection
    (n_max B if ``residual``, else empty)."""
    widths = [int(w) for w in widths]
    n_max = max(widths)
    pairs = list(zip(widths[:-1], widths[1:]))
    if method_code == METHOD_DENSE:
        factor = max(n_in * n_out for n_in, n_out in pairs)
    else:
        factor = max(min(n_in, nb) * max(n_in, n_out) for n_in, n_out in pairs)
    q = factor if init_code == INIT_ORTHOGONAL else 0
    prev = n_max * nb if residual else 0
    sizes = (n_max * nb, n_max * nb, factor, q, 2 * n_max, 2 * n_max, n_max, prev)
    return np.cumsum((0,) + sizes).astype(np.int64)


@cuda.jit(device=True)
def orthogonal_scale(cw, n_in, n_out):
    """sqrt(cw max(1, n_out / n_in)): entry variance cw / n_in for Haar weights."""
    return math.sqrt(cw * max(1.0, n_out / n_in))


@cuda.jit(device=True)
def add_bias(z, n_out, nb, cb, seed, network, layer, bias):
    """z[a n_out + i] += b_i, b ~ N(0, cb) from stream (layer, bias); nothing if cb == 0."""
    if cb > 0.0:
        fill_normals(bias, n_out, seed, network, stream_id(layer, PURPOSE_BIAS), math.sqrt(cb))
        i = cuda.threadIdx.x
        while i < n_out:
            for a in range(nb):
                z[a * n_out + i] += bias[i]
            i += cuda.blockDim.x
        cuda.syncthreads()


@cuda.jit(device=True)
def dense_weights(
    n_in, n_out, cw, init_code, seed, network, layer, factor, q, beta, rdiag, shared, small
):
    """Draw W (n_out x n_in) of the CPU ``draw_dense_weights``; returns (scale, row
    stride, column stride, in-q flag): W_ij = scale * buf[i row + j col], buf = q if the
    flag is set (Haar) else ``factor``."""
    stream = stream_id(layer, PURPOSE_WEIGHTS)
    if init_code == INIT_GAUSSIAN:
        fill_normals(factor, n_out * n_in, seed, network, stream, math.sqrt(cw / n_in))
        return 1.0, n_in, 1, False
    if init_code == INIT_UNIFORM:
        a = math.sqrt(3.0 * cw / n_in)
        fill_uniforms(factor, n_out * n_in, seed, network, stream, -a, a)
        return 1.0, n_in, 1, False
    haar_matrix_from_stream(
        n_out, n_in, seed, network, stream, factor, q, beta, rdiag, shared, small
    )
    scale = orthogonal_scale(cw, n_in, n_out)
    if n_out >= n_in:
        return scale, 1, n_out, True  # orthonormal columns, column-major
    return scale, n_in, 1, True  # orthonormal rows: row-major


@cuda.jit(device=True)
def dense_preactivation(
    network,
    seed,
    layer,
    cw,
    cb,
    init_code,
    s,
    n_in,
    nb,
    z,
    n_out,
    factor,
    q,
    beta,
    rdiag,
    bias,
    shared,
    small,
):
    """z = (W S + b)^T, explicit W (kept in ``factor`` or, Haar, ``q``); the sum over j
    in the CPU ``dense_matmul`` order."""
    scale, row, col, in_q = dense_weights(
        n_in, n_out, cw, init_code, seed, network, layer, factor, q, beta, rdiag, shared, small
    )
    w = q if in_q else factor
    i = cuda.threadIdx.x
    while i < n_out:
        for a in range(nb):
            acc = 0.0
            for j in range(n_in):
                acc += (scale * w[i * row + j * col]) * s[a * n_in + j]
            z[a * n_out + i] = acc
        i += cuda.blockDim.x
    cuda.syncthreads()
    add_bias(z, n_out, nb, cb, seed, network, layer, bias)


@cuda.jit(device=True)
def projected_preactivation(
    network,
    seed,
    layer,
    cw,
    cb,
    init_code,
    s,
    n_in,
    nb,
    z,
    n_out,
    factor,
    q,
    beta,
    rdiag,
    bias,
    r,
    shared,
    small,
):
    """z = (W S + b)^T by the exact projected sampler (the CPU ``projected_preactivation``):
    S (``s``) is overwritten by its reflectors (beta[:k], rdiag[:k]), r[:k, :B] gets the
    canonical R, and W Q = F is drawn: Gaussian G^T (k x n_out) in ``factor``; Haar: the
    frame (column-major max(n_in, n_out) x k) in ``q``. Columns of S of extreme magnitude
    are scaled by 2^-e_a before the QR and those of W S by 2^e_a after it, as on the CPU."""
    k = min(n_in, nb)
    exponents = cuda.local.array(MAX_B, int32)
    for a in range(nb):
        exponents[a] = column_exponent(s[a * n_in : (a + 1) * n_in], n_in, shared)
        if exponents[a] != 0:
            scale_column(s[a * n_in : (a + 1) * n_in], n_in, -int(exponents[a]))
    householder_factor(s, n_in, nb, beta, rdiag, shared, small)
    canonical_r(s, n_in, nb, rdiag, r)
    if init_code == INIT_GAUSSIAN:
        fill_normals(factor, k * n_out, seed, network, stream_id(layer, PURPOSE_WEIGHTS), 1.0)
        f = factor
        stride = n_out
        scale = math.sqrt(cw / n_in)
    else:
        stride = max(n_in, n_out)
        haar_frame_from_stream(
            stride,
            k,
            seed,
            network,
            stream_id(layer, PURPOSE_FRAME),
            factor,
            q,
            beta[k:],
            rdiag[k:],
            shared,
            small,
        )
        f = q
        scale = orthogonal_scale(cw, n_in, n_out)
    i = cuda.threadIdx.x
    while i < n_out:
        for a in range(nb):
            acc = 0.0
            for c in range(k):
                acc += f[c * stride + i] * r[c, a]
            z[a * n_out + i] = math.ldexp(scale * acc, int(exponents[a]))
        i += cuda.blockDim.x
    cuda.syncthreads()
    add_bias(z, n_out, nb, cb, seed, network, layer, bias)


@cuda.jit(device=True)
def preactivation(
    method_code,
    network,
    seed,
    layer,
    cw,
    cb,
    init_code,
    s,
    n_in,
    nb,
    z,
    n_out,
    factor,
    q,
    beta,
    rdiag,
    bias,
    r,
    shared,
    small,
):
    """One layer by the dense or the projected kernel (same arguments)."""
    if method_code == METHOD_DENSE:
        dense_preactivation(
            network,
            seed,
            layer,
            cw,
            cb,
            init_code,
            s,
            n_in,
            nb,
            z,
            n_out,
            factor,
            q,
            beta,
            rdiag,
            bias,
            shared,
            small,
        )
    else:
        projected_preactivation(
            network,
            seed,
            layer,
            cw,
            cb,
            init_code,
            s,
            n_in,
            nb,
            z,
            n_out,
            factor,
            q,
            beta,
            rdiag,
            bias,
            r,
            shared,
            small,
        )


@cuda.jit(device=True)
def copy_layer(z, out, size):
    """out[e] = z[e] for e < size (z^(l-1) kept for a residual connection)."""
    e = cuda.threadIdx.x
    while e < size:
        out[e] = z[e]
        e += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def add_residual(z, prev, size, xi, gamma):
    """z[e] = xi prev[e] + gamma z[e] for e < size (the CPU ``forward.add_residual``;
    prev not read when xi == 0)."""
    e = cuda.threadIdx.x
    while e < size:
        if xi != 0.0:
            z[e] = xi * prev[e] + gamma * z[e]
        else:
            z[e] = gamma * z[e]
        e += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def activate_layer(act_code, z, s, size):
    """s[e] = act(z[e]) for e < size."""
    e = cuda.threadIdx.x
    while e < size:
        s[e] = activate(act_code, z[e])
        e += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def load_inputs(xt, s):
    """s[a n_0 + i] = x_a,i from xt (n_0 x B)."""
    n0, nb = xt.shape
    i = cuda.threadIdx.x
    while i < n0:
        for a in range(nb):
            s[a * n0 + i] = xt[i, a]
        i += cuda.blockDim.x
    cuda.syncthreads()
