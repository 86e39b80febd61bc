"""Neural tangent kernel on the GPU, one thread block per network.

Twins of ``kernels/cpu/ntk.py`` (formulas, notation and the exactness argument of the
projected backward pass in its module docstring; docs/conventions.md#ntk,
docs/projected-sampler.md#ntk): the forward pass of
``kernels/cuda/forward.py`` keeps every layer's input (its QR reflectors on the projected
path), preactivations and weights (or W Q factors), then one backward sweep from layer L
down to 1 carries the vectors J^(l,l') of every target layer l >= l' at once (row
(t r + i) B + a, t = L - l, as on the CPU) and adds c^(l')_ab <J, J> into H. The random
numbers come from the CPU's stream positions (weights, biases, frames: as the forward;
the conditional weights of the backward pass: stream (l', PURPOSE_NTK)), and the QRs
follow the CPU's canonical rules, so network e of seed s has the CPU's NTK to rounding.
Residual layers (xi, gamma per layer: the CPU module docstring) scale c^(l') by
gamma_l'^2 and cross layer l' as J <- xi_l' J + gamma_l' act' * (W^T J); the Gaussian
projected backward factors u in place, so a residual network's work row has a padded
region there too, for the copy of u the skip needs (``ntk_work_layout(residual=True)``).

Supported: dense (Gaussian, uniform, orthogonal weights) and projected (Gaussian:
``projected_backward``; orthogonal: ``projected_orthogonal_backward``, exact under the
same rank condition as on the CPU, checked by the caller): ``SUPPORTED`` lists the
(method, init) pairs. Built-in activations only, float64, B <= forward.MAX_B, r >= 2.

Sums over neurons are fixed-order block sums (``block.block_sum``); sums over the small
indices (inputs, readouts, QR columns) run in the CPU's order, so results are
deterministic and differ from the CPU only in the order of the neuron sums.

Kernels (block t = network first + t, any block size that is a multiple of WARP up to
THREADS, ``block.block_threads``; work (count, layout[-1]) float64, layout from
``ntk_work_layout``):
    ntk_statistics_kernel(method_code, first, seed, xt, widths, cw, cb, init_code, act_code,
        lambda_b, lambda_w, pair_a, pair_b, quad_p1, quad_p2, four_point, stats, ntk_stats,
        n_readouts, save_layers, save_neurons, raw, work, layout, xi, gamma)
        the CPU ``batch_ntk_statistics`` (stats, ntk_stats, raw)
    ntk_kernel(method_code, first, seed, xt, widths, cw, cb, init_code, act_code, lambda_b,
        lambda_w, out, work, layout, xi, gamma)
        the CPU ``batch_ntk``: out[t] (L, r, r, B, B)
"""

import math

import numpy as np
from numba import cuda, float64

from ..cpu.codes import INIT_ORTHOGONAL, METHOD_DENSE
from ..cpu.rng import PURPOSE_NTK
from .block import THREADS, block_sum, fill_normals
from .forward import (
    MAX_B,
    activate_derivative,
    activate_layer,
    add_residual,
    copy_layer,
    load_inputs,
    mixes_residual,
    orthogonal_scale,
    preactivation,
    stream_id,
)
from .haar import canonical_r, form_q, householder_factor
from .moments import copy_neurons, layer_statistics

# Regions of a work row: layout[i]:layout[i + 1]. Fixed ones first, then per layer l
# (1..L) the region _LAYER + _PER_LAYER (l - 1) + {input s, z, kept factor, beta, rdiag}.
(
    _COEFS,
    _H,
    _SCRATCH,
    _BIAS,
    _U,
    _V,
    _Q,
    _FU,
    _BETA_U,
    _RDIAG_U,
    _R_U,
    _GAMMA,
    _PADDED,
    _PERP,
    _LAYER,
) = range(15)
_PER_LAYER = 5
_S, _Z, _KEEP, _BETA, _RDIAG = range(_PER_LAYER)


def ntk_work_layout(method_code, init_code, widths, nb, readouts, residual=False):
    """int64 offsets of the regions of one float64 work row per network (last element:
    the row length):
      coefs (L B^2): c^(l)_ab; h (L r^2 B^2): the NTK (statistics kernel);
      scratch: Gaussian buffer of the Haar draws; bias (n_max);
      u, v: the backward vectors, m_l max(n_{l-1}, n_l) with m_l = (L - l + 1) r B;
      projected only: q (Q of S), fu (F^T u, or V^T u~), beta_u, rdiag_u, r_u (QR of the
      vectors), gamma; Haar only: padded (u~), perp (the complement frame); projected
      Gaussian with ``residual`` (some xi != 0): padded (u kept for the skip);
      per layer: s (B n_{l-1}), z (B n_l), the kept factor (dense: W; projected: G^T or
      the Haar frame V), beta and rdiag (the QR of S, then the Haar frame's)."""
    widths = [int(w) for w in widths]
    n_layers = len(widths) - 1
    dense = method_code == METHOD_DENSE
    haar = init_code == INIT_ORTHOGONAL
    layers = []  # (n_in, n_out, k, big_n, m_l)
    for layer in range(1, n_layers + 1):
        n_in, n_out = widths[layer - 1], widths[layer]
        layers.append(
            (n_in, n_out, min(n_in, nb), max(n_in, n_out), (n_layers - layer + 1) * readouts * nb)
        )
    backward = layers[1:] if not dense else []  # the projected backward: layers 2..L

    def most(values):
        return max(list(values) + [0])

    m_max = n_layers * readouts * nb
    if dense:
        scratch = most(n_in * n_out for n_in, n_out, _, _, _ in layers) if haar else 0
    else:
        scratch = most(k * big for _, _, k, big, _ in layers) if haar else 0
    rows = most(m * big for _, _, _, big, m in layers)
    span = [big if haar else n_out for _, n_out, _, big, _ in backward]  # QR rows of u
    sizes = [
        n_layers * nb * nb,
        n_layers * readouts * readouts * nb * nb,
        scratch,
        max(widths),
        rows,
        rows,
        most(n_in * k for n_in, _, k, _, _ in backward),
        m_max * nb if backward else 0,
        m_max if backward else 0,
        m_max if backward else 0,
        most(min(s, m) * m for s, (_, _, _, _, m) in zip(span, backward)),
        most(
            min(s, m) * (big if haar else n_in) for s, (n_in, _, _, big, m) in zip(span, backward)
        ),
        most(m * big for _, _, _, big, m in backward) if haar or residual else 0,
        most(min(big, m) * big for _, _, _, big, m in backward) if haar else 0,
    ]
    for n_in, n_out, k, big, _ in layers:
        if dense:
            keep = n_in * n_out
            qr = min(n_in, n_out) if haar else 0
        else:
            keep = k * big
            qr = 2 * k
        sizes += [nb * n_in, nb * n_out, keep, qr, qr]
    return np.cumsum([0] + sizes).astype(np.int64)


@cuda.jit(device=True)
def slot(layer, which):
    """Index in ``layout`` of region ``which`` (_S .. _RDIAG) of layer ``layer``."""
    return _LAYER + _PER_LAYER * (layer - 1) + which


@cuda.jit(device=True)
def learning_coefficients(s, n, nb, lambda_b, lambda_w, coef, shared):
    """coef[a B + b] = lambda_b + lambda_w (1/n) sum_i s[a n + i] s[b n + i] (the CPU
    ``input_gram`` and coefficients of one layer)."""
    t = cuda.threadIdx.x
    for a in range(nb):
        for b in range(a, nb):
            part = 0.0
            i = t
            while i < n:
                part += s[a * n + i] * s[b * n + i]
                i += cuda.blockDim.x
            total = block_sum(part, shared)
            if t == 0:
                value = lambda_b + lambda_w * (total / n)
                coef[a * nb + b] = value
                coef[b * nb + a] = value
    cuda.syncthreads()


@cuda.jit(device=True)
def add_layer_contribution(u, m, r, nb, n, coef, h, n_layers, shared):
    """h[L-1-t] += coef_{a1 a2} <u_(t,i1,a1), u_(t,i2,a2)> for every target t < m/(r B);
    u[row n + i], h flat (L, r, r, B, B). The CPU ``add_layer_contribution``."""
    tid = cuda.threadIdx.x
    per_target = r * nb
    for t in range(m // per_target):
        base = t * per_target
        target = n_layers - 1 - t
        for p in range(per_target):
            for q in range(p, per_target):
                part = 0.0
                i = tid
                while i < n:
                    part += u[(base + p) * n + i] * u[(base + q) * n + i]
                    i += cuda.blockDim.x
                total = block_sum(part, shared)
                if tid == 0:
                    i1, a1 = p // nb, p % nb
                    i2, a2 = q // nb, q % nb
                    val = coef[a1 * nb + a2] * total
                    h[(((target * r + i1) * r + i2) * nb + a1) * nb + a2] += val
                    if q != p:
                        h[(((target * r + i2) * r + i1) * nb + a2) * nb + a1] += val
    cuda.syncthreads()


@cuda.jit(device=True)
def dense_weight_layout(init_code, cw, n_in, n_out):
    """(scale, row stride, column stride) of the W kept by ``forward.dense_weights``:
    W_ij = scale * buf[i row + j col]."""
    if init_code != INIT_ORTHOGONAL:
        return 1.0, n_in, 1
    scale = orthogonal_scale(cw, n_in, n_out)
    if n_out >= n_in:
        return scale, 1, n_out
    return scale, n_in, 1


@cuda.jit(device=True)
def dense_backward(w, scale, row_stride, col_stride, u, m, n_out, n_in, v):
    """v[row n_in + k] = sum_j W_jk u[row n_out + j] for rows < m, summed over j in the
    CPU ``dense_backward`` order (one thread per k: no reduction)."""
    k = cuda.threadIdx.x
    while k < n_in:
        for row in range(m):
            acc = 0.0
            for j in range(n_out):
                acc += u[row * n_out + j] * (scale * w[j * row_stride + k * col_stride])
            v[row * n_in + k] = acc
        k += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def projected_backward(
    network, seed, layer, cw, n_in, n_out, nb, u, m, v, row, layout, shared, small
):
    """v[rw n_in + i] = (W^T u_rw)_i for rows rw < m, Gaussian W drawn in law given the
    forward sample (the CPU ``projected_backward``); u is overwritten by its QR.

    From layer ``layer``'s regions of the work row: s, the forward reflectors of S
    (column-major n_in x B) with beta, rdiag; G^T (k x n_out, kept) with
    W Q = sqrt(cw/n_in) G."""
    tid = cuda.threadIdx.x
    at = slot(layer, _S)
    s = row[layout[at] : layout[at + 1]]
    gt = row[layout[at + _KEEP] : layout[at + _KEEP + 1]]
    beta = row[layout[at + _BETA] : layout[at + _BETA + 1]]
    rdiag = row[layout[at + _RDIAG] : layout[at + _RDIAG + 1]]
    q = row[layout[_Q] : layout[_Q + 1]]
    fu = row[layout[_FU] : layout[_FU + 1]]
    beta_u = row[layout[_BETA_U] : layout[_BETA_U + 1]]
    rdiag_u = row[layout[_RDIAG_U] : layout[_RDIAG_U + 1]]
    r_u = row[layout[_R_U] : layout[_R_U + 1]]
    gamma = row[layout[_GAMMA] : layout[_GAMMA + 1]]
    k = min(n_in, nb)
    scale = math.sqrt(cw / n_in)
    form_q(s, n_in, k, beta, rdiag, q, shared)  # q[c n_in + i], the canonical R's Q
    for rw in range(m):  # fu = F^T u
        for c in range(k):
            part = 0.0
            j = tid
            while j < n_out:
                part += gt[c * n_out + j] * u[rw * n_out + j]
                j += cuda.blockDim.x
            total = block_sum(part, shared)
            if tid == 0:
                fu[rw * k + c] = scale * total
    householder_factor(u, n_out, m, beta_u, rdiag_u, shared, small)  # U^T = Q_U R_U
    k_u = min(n_out, m)
    ru = r_u[: k_u * m].reshape((k_u, m))
    canonical_r(u, n_out, m, rdiag_u, ru)
    fill_normals(gamma, k_u * n_in, seed, network, stream_id(layer, PURPOSE_NTK), scale)
    i = tid
    while i < n_in:  # v = R_U^T Gamma
        for rw in range(m):
            acc = 0.0
            for c in range(min(k_u, rw + 1)):
                acc += ru[c, rw] * gamma[c * n_in + i]
            v[rw * n_in + i] = acc
        i += cuda.blockDim.x
    for rw in range(m):  # v = (I - Q Q^T) v + Q F^T u, one column of Q at a time
        for c in range(k):
            part = 0.0
            i = tid
            while i < n_in:
                part += q[c * n_in + i] * v[rw * n_in + i]
                i += cuda.blockDim.x
            shift = fu[rw * k + c] - block_sum(part, shared)
            i = tid
            while i < n_in:
                v[rw * n_in + i] += shift * q[c * n_in + i]
                i += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def projected_orthogonal_backward(
    network, seed, layer, cw, n_in, n_out, nb, u, m, v, row, layout, shared, small
):
    """v[rw n_in + i] = (W^T u_rw)_i for rows rw < m, W = scale * O with O Haar drawn in law
    given the forward sample (the CPU ``projected_orthogonal_backward``).

    From layer ``layer``'s regions: s, beta, rdiag as in ``projected_backward``; the
    forward's Haar frame V (kept, column-major N x k, N = max(n_in, n_out)). Q_N is Q
    (q[c n_in + i]) with its zero rows n_in..N-1 left implicit."""
    tid = cuda.threadIdx.x
    scale = orthogonal_scale(cw, n_in, n_out)
    at = slot(layer, _S)
    s = row[layout[at] : layout[at + 1]]
    frame = row[layout[at + _KEEP] : layout[at + _KEEP + 1]]
    beta = row[layout[at + _BETA] : layout[at + _BETA + 1]]
    rdiag = row[layout[at + _RDIAG] : layout[at + _RDIAG + 1]]
    q = row[layout[_Q] : layout[_Q + 1]]
    coef = row[layout[_FU] : layout[_FU + 1]]
    beta_u = row[layout[_BETA_U] : layout[_BETA_U + 1]]
    rdiag_u = row[layout[_RDIAG_U] : layout[_RDIAG_U + 1]]
    r_u = row[layout[_R_U] : layout[_R_U + 1]]
    gamma = row[layout[_GAMMA] : layout[_GAMMA + 1]]
    padded = row[layout[_PADDED] : layout[_PADDED + 1]]
    perp = row[layout[_PERP] : layout[_PERP + 1]]
    k = min(n_in, nb)
    big_n = max(n_in, n_out)
    form_q(s, n_in, k, beta, rdiag, q, shared)
    for rw in range(m):  # coef = V^T u~, u~ - V coef (classical: coef first)
        i = tid
        while i < big_n:
            padded[rw * big_n + i] = u[rw * n_out + i] if i < n_out else 0.0
            i += cuda.blockDim.x
        for c in range(k):
            part = 0.0
            i = tid
            while i < big_n:
                part += frame[c * big_n + i] * padded[rw * big_n + i]
                i += cuda.blockDim.x
            total = block_sum(part, shared)
            if tid == 0:
                coef[rw * k + c] = total
        cuda.syncthreads()
        i = tid
        while i < big_n:
            for c in range(k):
                padded[rw * big_n + i] -= coef[rw * k + c] * frame[c * big_n + i]
            i += cuda.blockDim.x
    cuda.syncthreads()
    householder_factor(padded, big_n, m, beta_u, rdiag_u, shared, small)  # u_perp = Q_a R_a
    k_u = min(big_n, m)
    ru = r_u[: k_u * m].reshape((k_u, m))
    canonical_r(padded, big_n, m, rdiag_u, ru)
    fill_normals(gamma, k_u * big_n, seed, network, stream_id(layer, PURPOSE_NTK), 1.0)
    for c in range(k_u):  # project Q_N out of Gamma's columns, one column of Q at a time
        for j in range(k):
            part = 0.0
            i = tid
            while i < n_in:
                part += q[j * n_in + i] * gamma[c * big_n + i]
                i += cuda.blockDim.x
            total = block_sum(part, shared)
            i = tid
            while i < n_in:
                gamma[c * big_n + i] -= total * q[j * n_in + i]
                i += cuda.blockDim.x
    cuda.syncthreads()
    householder_factor(gamma, big_n, k_u, beta_u, rdiag_u, shared, small)
    form_q(gamma, big_n, k_u, beta_u, rdiag_u, perp, shared)  # F, sign-fixed
    i = tid
    while i < n_in:  # v = scale (Q_N coef + F R_a)[:n_in]
        for rw in range(m):
            acc = 0.0
            for c in range(k):
                acc += coef[rw * k + c] * q[c * n_in + i]
            for c in range(min(k_u, rw + 1)):
                acc += ru[c, rw] * perp[c * big_n + i]
            v[rw * n_in + i] = acc * scale
        i += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def ntk_network(
    method_code,
    network,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    lambda_b,
    lambda_w,
    r,
    h,
    row,
    layout,
    rsh,
    shared,
    small,
    xi,
    gamma,
):
    """The CPU ``ntk_one``: h (flat (L, r, r, B, B)) = NTK of network ``network`` at every
    layer, readouts i < r; every layer's preactivations stay in its z region of ``row``
    (region i of the row: row[layout[i]:layout[i + 1]]); xi, gamma: the residual
    coefficients per layer."""
    tid = cuda.threadIdx.x
    n_layers = widths.size - 1
    nb = xt.shape[1]
    haar = init_code == INIT_ORTHOGONAL
    coefs = row[layout[_COEFS] : layout[_COEFS + 1]]
    scratch = row[layout[_SCRATCH] : layout[_SCRATCH + 1]]

    at = slot(1, _S)
    load_inputs(xt, row[layout[at] : layout[at + 1]])
    for layer in range(1, n_layers + 1):
        n_in = widths[layer - 1]
        n_out = widths[layer]
        at = slot(layer, _S)
        s = row[layout[at] : layout[at + 1]]
        z = row[layout[at + _Z] : layout[at + _Z + 1]]
        keep = row[layout[at + _KEEP] : layout[at + _KEEP + 1]]
        coef = coefs[(layer - 1) * nb * nb : layer * nb * nb]
        learning_coefficients(s, n_in, nb, lambda_b, lambda_w, coef, shared)
        residual = mixes_residual(xi, gamma, layer)
        if residual:  # the layer's parameters enter z^(l) times gamma_l
            g2 = gamma[layer - 1] * gamma[layer - 1]
            e = tid
            while e < nb * nb:
                coef[e] *= g2
                e += cuda.blockDim.x
            cuda.syncthreads()
        preactivation(
            method_code,
            network,
            seed,
            layer,
            cw[layer - 1],
            cb[layer - 1],
            init_code,
            s,
            n_in,
            nb,
            z,
            n_out,
            scratch if haar else keep,  # Haar: the Gaussian buffer is scratch,
            keep if haar else scratch,  # the weights / frame are kept
            row[layout[at + _BETA] : layout[at + _BETA + 1]],
            row[layout[at + _RDIAG] : layout[at + _RDIAG + 1]],
            row[layout[_BIAS] : layout[_BIAS + 1]],
            rsh,
            shared,
            small,
        )
        if residual:
            at = slot(layer - 1, _Z)
            add_residual(
                z, row[layout[at] : layout[at + 1]], nb * n_out, xi[layer - 1], gamma[layer - 1]
            )
        if layer < n_layers:
            at = slot(layer + 1, _S)
            activate_layer(act_code, z, row[layout[at] : layout[at + 1]], nb * n_out)

    e = tid
    while e < h.size:
        h[e] = 0.0
        e += cuda.blockDim.x
    u = row[layout[_U] : layout[_U + 1]]
    v = row[layout[_V] : layout[_V + 1]]
    m = 0
    for lp in range(n_layers, 0, -1):
        n_lp = widths[lp]
        e = tid
        while e < r * nb * n_lp:  # the new target's rows: e_i for (i, a)
            p = e // n_lp
            j = e % n_lp
            u[(m + p) * n_lp + j] = 1.0 if j == p // nb else 0.0
            e += cuda.blockDim.x
        cuda.syncthreads()
        m += r * nb
        add_layer_contribution(
            u, m, r, nb, n_lp, coefs[(lp - 1) * nb * nb : lp * nb * nb], h, n_layers, shared
        )
        if lp == 1:
            break
        n_in = widths[lp - 1]
        residual = mixes_residual(xi, gamma, lp)
        skip_xi = xi[lp - 1] if residual else 0.0
        skip = u  # J^(l,l') for the skip (n_in == n_lp there); dense and Haar keep u
        if skip_xi != 0.0 and method_code != METHOD_DENSE and not haar:
            skip = row[layout[_PADDED] : layout[_PADDED + 1]]
            copy_layer(u, skip, m * n_lp)  # projected_backward factors u in place
        if method_code == METHOD_DENSE:
            at = slot(lp, _KEEP)
            scale, row_stride, col_stride = dense_weight_layout(init_code, cw[lp - 1], n_in, n_lp)
            dense_backward(
                row[layout[at] : layout[at + 1]], scale, row_stride, col_stride, u, m, n_lp, n_in, v
            )
        elif haar:
            projected_orthogonal_backward(
                network, seed, lp, cw[lp - 1], n_in, n_lp, nb, u, m, v, row, layout, shared, small
            )
        else:
            projected_backward(
                network, seed, lp, cw[lp - 1], n_in, n_lp, nb, u, m, v, row, layout, shared, small
            )
        at = slot(lp - 1, _Z)
        zprev = row[layout[at] : layout[at + 1]]
        g = gamma[lp - 1] if residual else 1.0
        i = tid
        while i < n_in:  # u = act'(z^(l'-1)) * v; residual: xi u + gamma act' * v
            for a in range(nb):
                d = activate_derivative(act_code, zprev[a * n_in + i])
                for rw in range(a, m, nb):
                    if not residual:
                        u[rw * n_in + i] = v[rw * n_in + i] * d
                    elif skip_xi == 0.0:
                        u[rw * n_in + i] = g * (v[rw * n_in + i] * d)
                    else:
                        u[rw * n_in + i] = skip_xi * skip[rw * n_in + i] + g * (
                            v[rw * n_in + i] * d
                        )
            i += cuda.blockDim.x
        cuda.syncthreads()


@cuda.jit(device=True)
def ntk_layer_statistics(h, r, z, n, nb, out, shared):
    """The CPU ``ntk_statistics`` of one layer: h flat (r, r, B, B), z[a n + i];
    out = [h_diag | h_off | G | A | B | D | F | hh | hG]. The sum of z z^T over all
    neurons by block sums, the rest one output element per thread, summed over readouts
    and readout pairs in the CPU order."""
    tid = cuda.threadIdx.x
    b2 = nb * nb
    b4 = b2 * b2
    inv_pairs = 1.0 / (r * (r - 1))
    inv_rest = 1.0 / (n - 1)
    for a in range(nb):
        for b in range(a, nb):
            part = 0.0
            i = tid
            while i < n:
                part += z[a * n + i] * z[b * n + i]
                i += cuda.blockDim.x
            total = block_sum(part, shared)
            if tid == 0:
                own = 0.0
                for i in range(r):
                    own += z[a * n + i] * z[b * n + i]
                g = (total - own / r) * inv_rest
                out[2 * b2 + a * nb + b] = g
                out[2 * b2 + b * nb + a] = g
    e = tid
    while e < b2:
        diag = 0.0
        for i in range(r):
            diag += h[(i * r + i) * b2 + e]
        off = 0.0
        for i in range(r):
            for j in range(r):
                if i != j:
                    off += h[(i * r + j) * b2 + e]
        out[e] = diag / r
        out[b2 + e] = off * inv_pairs
        e += cuda.blockDim.x
    cuda.syncthreads()
    base = 3 * b2
    inv_own = inv_rest / r
    e = tid
    while e < b4:
        ab = e // b2
        cd = e % b2
        c = cd // nb
        d = cd % nb
        s_a = 0.0
        s_b = 0.0
        s_f = 0.0
        for i in range(r):
            for j in range(r):
                if i == j:
                    continue
                hii = h[(i * r + i) * b2 + ab] * inv_pairs
                hij = h[(i * r + j) * b2 + ab] * inv_pairs
                s_a += hii * h[(j * r + j) * b2 + cd]
                s_b += hij * h[(i * r + j) * b2 + cd]
                s_f += hij * z[c * n + i] * z[d * n + j]
        s_d = 0.0
        for i in range(r):
            s_d += (h[(i * r + i) * b2 + ab] - out[ab]) * z[c * n + i] * z[d * n + i]
        out[base + e] = s_a
        out[base + b4 + e] = s_b
        out[base + 2 * b4 + e] = out[ab] * out[2 * b2 + cd] - s_d * inv_own
        out[base + 3 * b4 + e] = s_f
        out[base + 4 * b4 + e] = out[ab] * out[cd]
        out[base + 5 * b4 + e] = out[ab] * out[2 * b2 + cd]
        e += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit
def ntk_statistics_kernel(
    method_code,
    first,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    lambda_b,
    lambda_w,
    pair_a,
    pair_b,
    quad_p1,
    quad_p2,
    four_point,
    stats,
    ntk_stats,
    n_readouts,
    save_layers,
    save_neurons,
    raw,
    work,
    layout,
    xi,
    gamma,
):
    """stats, ntk_stats, raw of network first + t in block t (the CPU
    ``batch_ntk_statistics``); work (count, layout[-1]), layout from ``ntk_work_layout``
    (residual=True where some xi != 0); xi, gamma: the residual coefficients per layer."""
    net = cuda.blockIdx.x
    if net >= stats.shape[0]:
        return
    nb = xt.shape[1]
    shared = cuda.shared.array(THREADS, float64)
    rsh = cuda.shared.array((MAX_B, MAX_B), float64)
    small = cuda.shared.array(4, float64)
    row = work[net]
    h = row[layout[_H] : layout[_H + 1]]
    ntk_network(
        method_code,
        first + net,
        seed,
        xt,
        widths,
        cw,
        cb,
        init_code,
        act_code,
        lambda_b,
        lambda_w,
        n_readouts,
        h,
        row,
        layout,
        rsh,
        shared,
        small,
        xi,
        gamma,
    )
    per_layer = n_readouts * n_readouts * nb * nb
    pos = 0
    j = 0
    for layer in range(1, widths.size):
        n = widths[layer]
        at = slot(layer, _Z)
        z = row[layout[at] : layout[at + 1]]
        layer_statistics(
            z, n, pair_a, pair_b, quad_p1, quad_p2, four_point, stats[net, layer - 1], shared
        )
        ntk_layer_statistics(
            h[(layer - 1) * per_layer : layer * per_layer],
            n_readouts,
            z,
            n,
            nb,
            ntk_stats[net, layer - 1],
            shared,
        )
        if j < save_layers.size and save_layers[j] == layer:
            size = save_neurons[j] * nb
            copy_neurons(z, n, nb, raw[net, pos : pos + size])
            pos += size
            j += 1


@cuda.jit
def ntk_kernel(
    method_code,
    first,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    lambda_b,
    lambda_w,
    out,
    work,
    layout,
    xi,
    gamma,
):
    """out[t] (L, r, r, B, B) = NTK of network first + t, block t (the CPU ``batch_ntk``);
    work (count, layout[-1]), layout from ``ntk_work_layout`` (residual=True where some
    xi != 0); xi, gamma: the residual coefficients per layer."""
    net = cuda.blockIdx.x
    if net >= out.shape[0]:
        return
    shared = cuda.shared.array(THREADS, float64)
    rsh = cuda.shared.array((MAX_B, MAX_B), float64)
    small = cuda.shared.array(4, float64)
    ntk_network(
        method_code,
        first + net,
        seed,
        xt,
        widths,
        cw,
        cb,
        init_code,
        act_code,
        lambda_b,
        lambda_w,
        out.shape[2],
        out[net].reshape(out[net].size),
        work[net],
        layout,
        rsh,
        shared,
        small,
        xi,
        gamma,
    )


# (method, init) pairs these kernels cover: all of the CPU's.
SUPPORTED = frozenset(
    {
        ("dense", "gaussian"),
        ("dense", "uniform"),
        ("dense", "orthogonal"),
        ("projected", "gaussian"),
        ("projected", "orthogonal"),
    }
)
KERNELS = {"ntk_statistics_kernel": ntk_statistics_kernel, "ntk_kernel": ntk_kernel}
