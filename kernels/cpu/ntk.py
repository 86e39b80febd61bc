"""NTK of one network at every layer, dense or projected (docs/conventions.md#ntk,
docs/projected-sampler.md#ntk).

With the learning rates (lambda_b, lambda_w) and, per input pair, the layer coefficients
    c^(l')_ab = lambda_b + lambda_w Gs^(l'-1)_ab,   Gs^(l'-1) = (1/n_{l'-1}) s^(l'-1) s^(l'-1)^T
(s^(0) = x, s^(l) = act(z^(l)), input-major B x n), the NTK of layer l is
    H^(l)_{i1 i2; a1 a2} = sum_{l' <= l} c^(l')_{a1 a2} <J^(l,l')_{i1;a1}, J^(l,l')_{i2;a2}>,
    J^(l,l)_{i;a} = e_i,   J^(l,l'-1)_{i;a} = act'(z^(l'-1)_{.;a}) * (W^(l')^T J^(l,l')_{i;a}),
for the readout neurons i < r of layer l. One backward sweep from layer L down to 1
carries the vectors of every target layer l >= l': row (t r + i) B + a of ``u`` holds
J^(l,l')_{i;a}, t = L - l, so each W^(l')^T acts once on all of them.

Dense: W^(l')^T from the weights stored by the forward pass. Projected (Gaussian weights):
the forward pass fixed only W Q = F (S = Q R thin QR, F = sqrt(cw/n_in) G), so in law
    W = F Q^T + W~ (I - Q Q^T),   W~ independent, iid N(0, cw/n_in),
    W^T u = Q F^T u + (I - Q Q^T) W~^T u.
W~^T is needed on all the vectors that ever cross layer l' at once: with the thin QR
U^T = Q_U R_U of those vectors, U W~ = R_U^T (Q_U^T W~) and Q_U^T W~ (rank x n_in) is iid
N(0, cw/n_in), drawn from stream (l', PURPOSE_NTK). Exact jointly over layers and targets.

Residual layers (docs/conventions.md#residual; xi_l, gamma_l with xi_l != 0 or
gamma_l != 1 only at layers l >= 2 with n_l = n_{l-1}, ``forward.mixes_residual``):
    z^(l) = xi_l z^(l-1) + gamma_l (b^(l) + W^(l) s^(l-1)),
so dz^(l)/db^(l) and dz^(l)/dW^(l) carry a factor gamma_l and dz^(l)/dz^(l-1) =
xi_l I + gamma_l W^(l) diag(act'(z^(l-1))):
    c^(l')_ab = gamma_l'^2 (lambda_b + lambda_w Gs^(l'-1)_ab),
    J^(l,l'-1)_{i;a} = xi_l' J^(l,l')_{i;a}
                       + gamma_l' act'(z^(l'-1)_{.;a}) * (W^(l')^T J^(l,l')_{i;a}).
W^(l')^T J is the same product as above (dense, or projected in law: the forward pass
still fixes only W Q = F, as later layers see W^(l') only through z^(l')), and
act' is taken at the residual z^(l'-1). The skip needs J^(l,l') after W^T has crossed
it: the dense and Haar backward passes leave u intact; the Gaussian projected one
factors u in place, so its rows are first copied into the PADDED region (unused there).
Layers without a residual connection take the plain path (bit-identical to a network
without xi, gamma).

Arithmetic in float64. ``act_code`` selects a built-in activation and its derivative.
"""

import math

import numpy as np
from numba import njit, prange

from .activations import activate_derivative
from .codes import INIT_GAUSSIAN, METHOD_DENSE
from .config import FASTMATH, FASTMATH_REDUCTIONS
from .forward import (
    activate_layer,
    add_residual,
    mixes_residual,
    orthogonal_scale,
    projected_scratch,
    projected_workspace_size,
)
from .haar import extract_r, form_q, householder_factor, sign_fix
from .moments import (
    chunk_bounds,
    chunk_count,
    copy_neurons,
    layer_statistics,
    preactivation,
    statistics_workspace_size,
)
from .rng import PURPOSE_NTK, fill_normal, stream_id

ROW_BLOCK = 8


# Named regions of the work buffer of ``ntk_one`` (the twin of the CUDA kernels'
# ``ntk_work_layout``): region i is work[layout[i]:layout[i + 1]], layout from
# ``ntk_work_layout``. COEFS (L B^2): the layer coefficients c^(l)_ab; then per layer
# l = 1..L (``layer_region``) LAYER_S, the layer's input s^(l-1) (B x n_{l-1}; projected:
# overwritten by its QR); then per layer LAYER_KEEP, what the forward pass keeps for the
# backward one (dense: W^(l), n_l x n_{l-1}; projected: the forward's scratch,
# ``projected_workspace_size``); then the backward regions (``tail_region``) U, V (the
# vectors before and after crossing a layer, m_max x n_max each, m_max = L r B) and, on the
# projected path only (empty on the dense one), Q (n_max x B), FU (m_max x B), BETA_U,
# RDIAG_U (m_max each), R_U (m_max^2): the QR of the vectors, GAMMA, PADDED, PERP
# (m_max n_max each; PADDED and PERP are used by Haar weights, PADDED by Gaussian weights
# of a residual layer to keep u for the skip).
COEFS = 0
LAYER_S = 0
LAYER_KEEP = 1
(
    TAIL_U,
    TAIL_V,
    TAIL_Q,
    TAIL_FU,
    TAIL_BETA_U,
    TAIL_RDIAG_U,
    TAIL_R_U,
    TAIL_GAMMA,
    TAIL_PADDED,
    TAIL_PERP,
) = range(10)
N_TAIL = 10


@njit(inline="always")
def layer_region(n_layers, layer, which):
    """Region index of ``which`` (LAYER_S or LAYER_KEEP) of layer ``layer`` (1..L)."""
    return 1 + which * n_layers + layer - 1


@njit(inline="always")
def tail_region(n_layers, which):
    """Region index of backward region ``which`` (TAIL_U .. TAIL_PERP)."""
    return 1 + 2 * n_layers + which


@njit(inline="always")
def region(work, layout, index):
    """Region ``index`` of ``work`` (a view)."""
    return work[layout[index] : layout[index + 1]]


@njit(cache=True)
def ntk_work_layout(method_code, widths, nb, r):
    """int64 offsets of the regions of ``ntk_one``'s float64 work buffer (the region
    names above); the last element is the buffer's length."""
    n_layers = widths.size - 1
    n_max = widths.max()
    m_max = n_layers * r * nb
    sizes = np.zeros(1 + 2 * n_layers + N_TAIL, np.int64)
    sizes[COEFS] = n_layers * nb * nb
    for layer in range(1, n_layers + 1):
        sizes[layer_region(n_layers, layer, LAYER_S)] = widths[layer - 1] * nb
        if method_code == METHOD_DENSE:
            keep = widths[layer] * widths[layer - 1]
        else:
            keep = projected_workspace_size(widths, nb)
        sizes[layer_region(n_layers, layer, LAYER_KEEP)] = keep
    sizes[tail_region(n_layers, TAIL_U)] = m_max * n_max
    sizes[tail_region(n_layers, TAIL_V)] = m_max * n_max
    if method_code != METHOD_DENSE:
        sizes[tail_region(n_layers, TAIL_Q)] = n_max * nb
        sizes[tail_region(n_layers, TAIL_FU)] = m_max * nb
        sizes[tail_region(n_layers, TAIL_BETA_U)] = m_max
        sizes[tail_region(n_layers, TAIL_RDIAG_U)] = m_max
        sizes[tail_region(n_layers, TAIL_R_U)] = m_max * m_max
        sizes[tail_region(n_layers, TAIL_GAMMA)] = m_max * n_max
        sizes[tail_region(n_layers, TAIL_PADDED)] = m_max * n_max
        sizes[tail_region(n_layers, TAIL_PERP)] = m_max * n_max
    layout = np.zeros(sizes.size + 1, np.int64)
    for i in range(sizes.size):
        layout[i + 1] = layout[i] + sizes[i]
    return layout


@njit(cache=True)
def ntk_workspace_size(method_code, widths, nb, r):
    """float64 elements of ``work`` for ``ntk_one`` (the end of ``ntk_work_layout``)."""
    return ntk_work_layout(method_code, widths, nb, r)[-1]


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def input_gram(st, out):
    """out = (1/n) st st^T for st (B x n)."""
    nb, n = st.shape
    for a in range(nb):
        for b in range(a, nb):
            acc = 0.0
            for i in range(n):
                acc += st[a, i] * st[b, i]
            out[a, b] = acc / n
            out[b, a] = out[a, b]


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def add_layer_contribution(u, m, r, nb, n, coef, h):
    """h[L-1-t] += coef_{a1a2} <u_(t,i1,a1), u_(t,i2,a2)> for every target t < m/(r B)."""
    per_target = r * nb
    n_layers = h.shape[0]
    for t in range(m // per_target):
        base = t * per_target
        target = n_layers - 1 - t
        for p in range(per_target):
            up = u[base + p, :n]
            for q in range(p, per_target):
                uq = u[base + q, :n]
                acc = 0.0
                for k in range(n):
                    acc += up[k] * uq[k]
                i1, a1 = p // nb, p % nb
                i2, a2 = q // nb, q % nb
                val = coef[a1, a2] * acc
                h[target, i1, i2, a1, a2] += val
                if q != p:
                    h[target, i2, i1, a2, a1] += val


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def dense_backward(w, u, m, v):
    """v[row, :n_in] = W^T u[row, :n_out] for rows < m; W (n_out x n_in).

    Rows in blocks of ROW_BLOCK so the block of v stays in L1 while W streams by once.
    """
    n_out, n_in = w.shape
    for row0 in range(0, m, ROW_BLOCK):
        row1 = min(row0 + ROW_BLOCK, m)
        for row in range(row0, row1):
            v[row, :n_in] = 0.0
        for j in range(n_out):
            wj = w[j]
            for row in range(row0, row1):
                c = u[row, j]
                vr = v[row]
                for k in range(n_in):
                    vr[k] += c * wj[k]


@njit(fastmath=FASTMATH_REDUCTIONS, error_model="numpy", cache=True)
def projected_backward(
    network,
    seed,
    layer,
    cw,
    s_factored,
    beta,
    rdiag,
    gt,
    u,
    m,
    v,
    q,
    fu,
    beta_u,
    rdiag_u,
    r_u,
    gamma,
):
    """v[row, :n_in] = W^T u[row, :n_out] for rows < m, W drawn in law given the forward
    sample (module docstring); u is overwritten by the QR of its rows.

    s_factored (n_in x B): the forward QR of S (reflectors), beta its coefficients,
    rdiag its diag(R); gt (k x n_out): G^T with W Q = sqrt(cw/n_in) G, where Q has the
    columns signed like the canonical R (diag R >= 0, ``haar.extract_r``).
    """
    n_in = s_factored.shape[0]
    k, n_out = gt.shape
    scale = math.sqrt(cw / n_in)
    qk = q[:n_in, :k]
    form_q(s_factored, beta, qk)
    sign_fix(qk, rdiag)  # the Q of the forward's canonical R
    for row in range(m):  # F^T u
        for c in range(k):
            acc = 0.0
            for j in range(n_out):
                acc += gt[c, j] * u[row, j]
            fu[row, c] = scale * acc
    ut = u.T  # U^T (n_out x m), columns contiguous, factored in place
    k_u = min(n_out, m)
    householder_factor(ut, beta_u[:k_u], rdiag_u[:k_u])
    ru = r_u[: k_u * m].reshape((k_u, m))
    extract_r(ut, rdiag_u[:k_u], ru)
    g = gamma[: k_u * n_in].reshape((k_u, n_in))
    fill_normal(g.ravel(), seed, network, stream_id(layer, PURPOSE_NTK), scale)
    for row in range(m):  # v = R_U^T Gamma, then (I - Q Q^T) v + Q F^T u
        vr = v[row, :n_in]
        vr[:] = 0.0
        for c in range(min(k_u, row + 1)):
            coef = ru[c, row]
            for i in range(n_in):
                vr[i] += coef * g[c, i]
        for c in range(k):
            acc = 0.0
            for i in range(n_in):
                acc += qk[i, c] * vr[i]
            shift = fu[row, c] - acc
            for i in range(n_in):
                vr[i] += shift * qk[i, c]


@njit(fastmath=FASTMATH_REDUCTIONS, error_model="numpy", cache=True)
def projected_orthogonal_backward(
    network,
    seed,
    layer,
    scale,
    s_factored,
    beta,
    rdiag,
    frame_t,
    u,
    m,
    v,
    q,
    coef,
    beta_u,
    rdiag_u,
    r_u,
    gamma,
    padded,
    perp,
):
    """v[row, :n_in] = W^T u[row, :n_out] for rows < m, W = scale * O with O Haar, drawn in
    law given the forward sample; exact for m <= N - k (checked by the caller).

    Embed O in a Haar Omega in O(N), N = max(n_in, n_out): O = Omega[:, :n_in] (n_out >= n_in)
    or Omega[:n_out, :] (n_out < n_in). The forward fixed Omega Q_N = V (frame_t = V^T,
    k x N, the whole Haar frame; Q_N = Q padded to N rows). Given that,
        Omega = V Q_N^T + (Haar isometry complement(Q_N) <- complement(V)),
    so with u~ = u padded to N, a = V^T u~, u_perp = u~ - V a = Q_a R_a (thin QR, jointly
    over the rows), Omega^T u~ = Q_N a + F R_a, F a Haar frame in complement(Q_N): the QR
    (sign-fixed) of (I - Q_N Q_N^T) Gamma, Gamma iid N(0, 1), stream (layer, PURPOSE_NTK).
    W^T u = scale * (Omega^T u~)[:n_in].
    """
    n_in = s_factored.shape[0]
    k, big_n = frame_t.shape
    n_out = u.shape[1]
    qn = q[:big_n, :k]
    form_q(s_factored, beta, qn[:n_in])
    sign_fix(qn[:n_in], rdiag)
    qn[n_in:, :] = 0.0
    ut = padded[: m * big_n].reshape((m, big_n))
    for row in range(m):  # a = V^T u~, u_perp = u~ - V a
        ut[row, :n_out] = u[row]
        ut[row, n_out:] = 0.0
        for c in range(k):
            acc = 0.0
            for i in range(big_n):
                acc += frame_t[c, i] * ut[row, i]
            coef[row, c] = acc
        for c in range(k):
            for i in range(big_n):
                ut[row, i] -= coef[row, c] * frame_t[c, i]
    k_u = min(big_n, m)
    householder_factor(ut.T, beta_u[:k_u], rdiag_u[:k_u])
    ru = r_u[: k_u * m].reshape((k_u, m))
    extract_r(ut.T, rdiag_u[:k_u], ru)
    g = gamma[: k_u * big_n].reshape((k_u, big_n))  # rows: columns of Gamma
    fill_normal(g.ravel(), seed, network, stream_id(layer, PURPOSE_NTK), 1.0)
    for c in range(k_u):  # project out Q_N
        for j in range(k):
            acc = 0.0
            for i in range(big_n):
                acc += qn[i, j] * g[c, i]
            for i in range(big_n):
                g[c, i] -= acc * qn[i, j]
    frame = perp[: k_u * big_n].reshape((k_u, big_n)).T  # F (N x k_u), column-major
    householder_factor(g.T, beta_u[:k_u], rdiag_u[:k_u])
    form_q(g.T, beta_u[:k_u], frame)
    sign_fix(frame, rdiag_u[:k_u])
    for row in range(m):  # v = scale * (Q_N a + F R_a)[:n_in]
        vr = v[row, :n_in]
        vr[:] = 0.0
        for c in range(k):
            for i in range(n_in):
                vr[i] += coef[row, c] * qn[i, c]
        for c in range(min(k_u, row + 1)):
            rc = ru[c, row]
            for i in range(n_in):
                vr[i] += rc * frame[i, c]
        for i in range(n_in):
            vr[i] *= scale


@njit(fastmath=FASTMATH, cache=True)
def ntk_one(
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
    zbuf,
    offsets,
    work,
    h,
    xi,
    gamma,
):
    """NTK h (L, r, r, B, B) of network ``network`` at every layer, readouts i < r, and its
    preactivations in ``zbuf`` (layer l: zt^(l), B x n_l, at offsets[l-1]).

    work: ``ntk_workspace_size`` float64 elements, carved by ``ntk_work_layout`` (the region
    names above the layout). Projected: Gaussian or Haar weights
    (Haar: exact while L r B <= max(n_{l-1}, n_l) - min(n_{l-1}, B) at every layer).
    xi, gamma: the residual coefficients per layer ((L,), ``forward.add_residual``; the
    residual NTK in the module docstring).
    """
    n_layers = widths.size - 1
    nb = xt.shape[1]
    r = h.shape[1]
    n_max = widths.max()
    m_max = n_layers * r * nb
    layout = ntk_work_layout(method_code, widths, nb, r)
    coefs = region(work, layout, COEFS).reshape((n_layers, nb, nb))
    u_flat = region(work, layout, tail_region(n_layers, TAIL_U))  # packed (m x n_l') C order
    v_flat = region(work, layout, tail_region(n_layers, TAIL_V))

    # forward: keep every layer's input (QR factors on the projected path) and weights
    st = region(work, layout, layer_region(n_layers, 1, LAYER_S)).reshape((nb, widths[0]))
    st[:, :] = xt.T
    for layer in range(1, n_layers + 1):
        st = region(work, layout, layer_region(n_layers, layer, LAYER_S)).reshape(
            (nb, widths[layer - 1])
        )
        input_gram(st, coefs[layer - 1])
        for a in range(nb):
            for b in range(nb):
                coefs[layer - 1, a, b] = lambda_b + lambda_w * coefs[layer - 1, a, b]
        residual = mixes_residual(xi, gamma, layer)
        if residual:  # the layer's parameters enter z^(l) times gamma_l
            g2 = gamma[layer - 1] * gamma[layer - 1]
            for a in range(nb):
                for b in range(nb):
                    coefs[layer - 1, a, b] *= g2
        zt = zbuf[offsets[layer - 1] : offsets[layer]].reshape((nb, widths[layer]))
        preactivation(
            method_code,
            network,
            seed,
            layer,
            cw[layer - 1],
            cb[layer - 1],
            init_code,
            st,
            zt,
            region(work, layout, layer_region(n_layers, layer, LAYER_KEEP)),
        )
        if residual:
            zprev = zbuf[offsets[layer - 2] : offsets[layer - 1]].reshape((nb, widths[layer]))
            add_residual(zt, zprev, xi[layer - 1], gamma[layer - 1])
        if layer < n_layers:
            st_next = region(work, layout, layer_region(n_layers, layer + 1, LAYER_S)).reshape(
                (nb, widths[layer])
            )
            activate_layer(act_code, zt, st_next)

    # backward sweep, layer L down to 1
    h[:] = 0.0
    dsig = np.empty((nb, n_max))  # act'(z^(l'-1)) of the layer below
    m = 0
    for lp in range(n_layers, 0, -1):
        n_lp = widths[lp]
        u = u_flat[: (m + r * nb) * n_lp].reshape((m + r * nb, n_lp))
        for p in range(r * nb):
            u[m + p, :] = 0.0
            u[m + p, p // nb] = 1.0
        m += r * nb
        add_layer_contribution(u, m, r, nb, n_lp, coefs[lp - 1], h)
        if lp == 1:
            break
        n_in = widths[lp - 1]
        v = v_flat[: m * n_in].reshape((m, n_in))
        scratch = region(work, layout, layer_region(n_layers, lp, LAYER_KEEP))
        residual = mixes_residual(xi, gamma, lp)
        skip_xi = xi[lp - 1] if residual else 0.0
        skip = u  # J^(l,l') for the skip (n_in == n_lp there); dense and Haar keep u
        if skip_xi != 0.0 and method_code != METHOD_DENSE and init_code == INIT_GAUSSIAN:
            skip = region(work, layout, tail_region(n_layers, TAIL_PADDED))[: m * n_lp].reshape(
                (m, n_lp)
            )
            skip[:, :] = u  # projected_backward factors u in place
        if method_code == METHOD_DENSE:
            dense_backward(scratch[: n_lp * n_in].reshape((n_lp, n_in)), u, m, v)
        else:
            k = min(n_in, nb)
            factor, _, beta, rdiag = projected_scratch(scratch, nb, k, max(n_lp, n_in))
            s_factored = (
                region(work, layout, layer_region(n_layers, lp, LAYER_S)).reshape((nb, n_in)).T
            )
            q = region(work, layout, tail_region(n_layers, TAIL_Q)).reshape((n_max, nb))
            fu = region(work, layout, tail_region(n_layers, TAIL_FU)).reshape((m_max, nb))
            beta_u = region(work, layout, tail_region(n_layers, TAIL_BETA_U))
            rdiag_u = region(work, layout, tail_region(n_layers, TAIL_RDIAG_U))
            r_u = region(work, layout, tail_region(n_layers, TAIL_R_U))
            gauss = region(work, layout, tail_region(n_layers, TAIL_GAMMA))
            if init_code == INIT_GAUSSIAN:
                projected_backward(
                    network,
                    seed,
                    lp,
                    cw[lp - 1],
                    s_factored,
                    beta,
                    rdiag,
                    factor[: k * n_lp].reshape((k, n_lp)),
                    u,
                    m,
                    v,
                    q,
                    fu,
                    beta_u,
                    rdiag_u,
                    r_u,
                    gauss,
                )
            else:
                big_n = max(n_lp, n_in)
                projected_orthogonal_backward(
                    network,
                    seed,
                    lp,
                    orthogonal_scale(cw[lp - 1], n_in, n_lp),
                    s_factored,
                    beta,
                    rdiag,
                    factor.reshape((k, big_n)),
                    u,
                    m,
                    v,
                    q,
                    fu,
                    beta_u,
                    rdiag_u,
                    r_u,
                    gauss,
                    region(work, layout, tail_region(n_layers, TAIL_PADDED)),
                    region(work, layout, tail_region(n_layers, TAIL_PERP)),
                )
        zprev = zbuf[offsets[lp - 2] : offsets[lp - 1]].reshape((nb, n_in))
        for a in range(nb):
            for i in range(n_in):
                dsig[a, i] = activate_derivative(act_code, zprev[a, i])
        u = u_flat[: m * n_in].reshape((m, n_in))
        if not residual:
            for row in range(m):
                da = dsig[row % nb, :n_in]
                for i in range(n_in):
                    u[row, i] = v[row, i] * da[i]
        elif skip_xi == 0.0:  # gamma only: J <- gamma act' * (W^T J)
            g = gamma[lp - 1]
            for row in range(m):
                da = dsig[row % nb, :n_in]
                for i in range(n_in):
                    u[row, i] = g * (v[row, i] * da[i])
        else:  # J <- xi J + gamma act' * (W^T J)
            g = gamma[lp - 1]
            for row in range(m):
                da = dsig[row % nb, :n_in]
                for i in range(n_in):
                    u[row, i] = skip_xi * skip[row, i] + g * (v[row, i] * da[i])


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def ntk_statistics(h, zt, out):
    """Per-network NTK statistics of one layer, h (r, r, B, B), zt (B x n), into ``out``:
    [h_diag | h_off | G | A | B | D | F | hh | hG], with Z_k = z_k z_k^T (B x B) and means
    over readouts i < r, ordered readout pairs i != j, or (for G and D) the pairs (i < r,
    j != i) of a readout and any other neuron j < n of the layer:
        h_diag = <H_ii>, h_off = <H_ij>, G = <Z_j>_(i, j != i) = (sum_k Z_k - G_r)/(n - 1)
        (G_r = (1/r) sum_{i<r} Z_i; B x B each),
        A_abcd = <H_ii,ab H_jj,cd>, B_abcd = <H_ij,ab H_ij,cd>,
        D_abcd = <H_ii,ab Z_j,cd>_(i, j != i) = h_diag,ab G_cd
                 - (1/(r (n - 1))) sum_{i<r} (H_ii,ab - h_diag,ab) Z_i,cd,
        F_abcd = <H_ij,ab z_i,c z_j,d>, hh = h_diag (x) h_diag, hG = h_diag (x) G
    (B^4 each); length 3 B^2 + 6 B^4 (``nnft_fast.ntk.ntk_statistics_size``). G and D pair
    H_ii with the same z_j z_j^T, so D - hG keeps no first-order fluctuation of either
    (``nnft_fast.ntk``, docs/estimators.md#ntk-estimators).
    """
    r = h.shape[0]
    nb, n = zt.shape
    b2 = nb * nb
    b4 = b2 * b2
    out[: 3 * b2 + 6 * b4] = 0.0
    inv_pairs = 1.0 / (r * (r - 1))
    inv_rest = 1.0 / (n - 1)
    for a in range(nb):
        for b in range(nb):
            acc = 0.0
            for i in range(r):
                acc += h[i, i, a, b]
            out[a * nb + b] = acc / r
            acc = 0.0
            for i in range(r):
                for j in range(r):
                    if i != j:
                        acc += h[i, j, a, b]
            out[b2 + a * nb + b] = acc * inv_pairs
            acc = 0.0
            for k in range(n):
                acc += zt[a, k] * zt[b, k]
            own = 0.0
            for i in range(r):
                own += zt[a, i] * zt[b, i]
            out[2 * b2 + a * nb + b] = (acc - own / r) * inv_rest
    base = 3 * b2
    for i in range(r):
        for j in range(r):
            if i == j:
                continue
            for a in range(nb):
                for b in range(nb):
                    hii = h[i, i, a, b] * inv_pairs
                    hij = h[i, j, a, b] * inv_pairs
                    idx = (a * nb + b) * b2
                    for c in range(nb):
                        for d in range(nb):
                            e = idx + c * nb + d
                            out[base + e] += hii * h[j, j, c, d]
                            out[base + b4 + e] += hij * h[i, j, c, d]
                            out[base + 3 * b4 + e] += hij * zt[c, i] * zt[d, j]
    inv_own = inv_rest / r
    for ab in range(b2):
        a = ab // nb
        b = ab % nb
        for cd in range(b2):
            c = cd // nb
            d = cd % nb
            e = ab * b2 + cd
            acc = 0.0
            for i in range(r):
                acc += (h[i, i, a, b] - out[ab]) * zt[c, i] * zt[d, i]
            out[base + 2 * b4 + e] = out[ab] * out[2 * b2 + cd] - acc * inv_own
            out[base + 4 * b4 + e] = out[ab] * out[cd]
            out[base + 5 * b4 + e] = out[ab] * out[2 * b2 + cd]


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_ntk_statistics(
    method_code,
    first,
    count,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    lambda_b,
    lambda_w,
    offsets,
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
    xi,
    gamma,
):
    """As ``moments.batch_statistics`` (stats, raw) plus ntk_stats[t, l-1, :] =
    ``ntk_statistics`` of layer l of network first + t, readouts i < n_readouts; xi,
    gamma: the residual coefficients per layer."""
    n_layers = widths.size - 1
    nb = xt.shape[1]
    n_work = ntk_workspace_size(method_code, widths, nb, n_readouts)
    n_stat_work = statistics_workspace_size(widths.max(), nb, pair_a.size)
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        zbuf = np.empty(offsets[n_layers])
        work = np.empty(n_work)
        stat_work = np.empty(n_stat_work)
        h = np.empty((n_layers, n_readouts, n_readouts, nb, nb))
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            ntk_one(
                method_code,
                first + t,
                seed,
                xt,
                widths,
                cw,
                cb,
                init_code,
                act_code,
                lambda_b,
                lambda_w,
                zbuf,
                offsets,
                work,
                h,
                xi,
                gamma,
            )
            pos = 0
            j = 0
            for layer in range(1, n_layers + 1):
                zt = zbuf[offsets[layer - 1] : offsets[layer]].reshape((nb, widths[layer]))
                layer_statistics(
                    zt, pair_a, pair_b, quad_p1, quad_p2, four_point, stats[t, layer - 1], stat_work
                )
                ntk_statistics(h[layer - 1], zt, ntk_stats[t, layer - 1])
                if j < save_layers.size and save_layers[j] == layer:
                    size = save_neurons[j] * nb
                    copy_neurons(zt, raw[t, pos : pos + size])
                    pos += size
                    j += 1


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_ntk(
    method_code,
    first,
    count,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    lambda_b,
    lambda_w,
    offsets,
    out,
    xi,
    gamma,
):
    """out[t] (L, r, r, B, B) = NTK of network first + t at every layer; xi, gamma: the
    residual coefficients per layer."""
    nb = xt.shape[1]
    n_work = ntk_workspace_size(method_code, widths, nb, out.shape[2])
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        zbuf = np.empty(offsets[widths.size - 1])
        work = np.empty(n_work)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            ntk_one(
                method_code,
                first + t,
                seed,
                xt,
                widths,
                cw,
                cb,
                init_code,
                act_code,
                lambda_b,
                lambda_w,
                zbuf,
                offsets,
                work,
                out[t],
                xi,
                gamma,
            )
