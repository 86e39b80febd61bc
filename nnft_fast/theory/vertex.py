"""Four-point vertex at order 1/n (Roberts & Yaida ch. 4), Gaussian or Haar weights, B inputs.

With V^(l) = n_{l-1} x (connected distinct-neuron four-point function) (docs/conventions.md#vertex),
Gaussian weights:
    V^(1) = 0,
    V^(l+1)_{(ab)(cd)} = C_W^2 [<s_a s_b s_c s_d>_K - <s_a s_b>_K <s_c s_d>_K]
                         + (C_W^2 / 4) (n_l / n_{l-1})
                           sum_{e f g h} V^(l)_{(ef)(gh)} D^{ef}_{ab} D^{gh}_{cd},
    D^{ef}_{ab} = <d^2 (s_a s_b) / dz_e dz_f>_K,  s = sigma(z), K = K^(l) (infinite width),
and the same-neuron connected function is (V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)) / n_{l-1}.

Haar-orthogonal weights W = s O (O an n_{l+1} x n_l Haar frame, s^2 = C_W N / n_l with
N = max(n_l, n_{l+1}), docs/conventions.md#haar). Given the layer below, S = sigma(z^(l)), the
rows of O S are not independent Gaussians: O's entries obey the O(N) Weingarten calculus,
    E[O_ik O_il O_jm O_jp] = [(N+1) d_kl d_mp - d_km d_lp - d_kp d_lm] / (N (N-1) (N+2)),
for i != j, so with C = C_W S^T S / n_l (the conditional kernel less C_b)
    E[z_ia z_ib z_jc z_jd | S] = Khat_ab Khat_cd - (C_ac C_bd + C_ad C_bc) / N + O(1/N^2).
Two distinct neurons therefore carry, besides the Gaussian-weight part (the fluctuation of
Khat), a negative cross cumulant of order 1/N; it enters the next layer exactly like the
Gaussian part (through D), so the recursion keeps its form with one extra term:
    V^(1)   = -(n_0 / N_1) (C_ac C_bd + C_ad C_bc),          C = K^(1) - C_b^(1),
    V^(l+1) = [Gaussian right-hand side] - C_W^2 (n_l / N_{l+1})
              (<s_a s_c> <s_b s_d> + <s_a s_d> <s_b s_c>)_K,  N_{l+1} = max(n_l, n_{l+1}).
The same-neuron relation above also holds (the same-neuron Weingarten term gives -2/N
times the three Wick pairings). Checks: deep linear, square: V/K^2 = -2 at every depth,
i.e. E[z^4]/E[z^2]^2 = 3 - 6/n, the sphere's 3n/(n+2) to this order.

D is computed without sigma'' by Gaussian integration by parts on the (z_a, z_b)
marginal M:  D = M^{-1} <s_a s_b (z z^T - M)> M^{-1}, so kinks (ReLU) are harmless.
Gaussian averages of up to four distinct inputs use tensor-product Gauss-Hermite
quadrature on the Cholesky factor of the marginal covariance.
Single input checks (exact at this order): V/K^2 = 2(l-1) linear, 5(l-1) ReLU at criticality.

Residual connections (docs/conventions.md#residual): z'_i = xi z_i + gamma u_i with
u_i = b_i + sum_j W_ij s_j, z = z^(l), z' = z^(l+1), s = sigma(z), n = n_l = n_{l-1} (a
residual layer keeps the width). Given layer l, the u_i are centred and, for Gaussian
weights, independent Gaussians with covariance Ghat_ab = C_b + (C_W / n) sum_k s_ka s_kb,
the same for every i, and independent of z. For i != j the terms odd in u_i or in u_j
vanish, so
    E[z'_ia z'_ib z'_jc z'_jd]
        = E[(xi^2 z_ia z_ib + gamma^2 Ghat_ab)(xi^2 z_jc z_jd + gamma^2 Ghat_cd)],
and with K' = xi^2 K + gamma^2 E[Ghat] (``infinite_width``) the connected function is
    xi^4 Cov(z_ia z_ib, z_jc z_jd) + gamma^4 Cov(Ghat_ab, Ghat_cd)
    + xi^2 gamma^2 [Cov(z_ia z_ib, Ghat_cd) + Cov(Ghat_ab, z_jc z_jd)].
Times n: the first term is xi^4 V^(l), the second gamma^4 times the plain right-hand side.
In the middle term, Cov(z_ia z_ib, Ghat_cd) = (C_W / n) sum_k Cov(z_ia z_ib, s_kc s_kd):
the neuron k = i gives, by Gaussian integration by parts,
<z_a z_b s_c s_d> - K_ab <s_c s_d> = sum_ef K_ae K_bf D^{ef}_{cd}; the n - 1 neurons k != i
give the distinct-neuron covariance of functions at order 1/n,
Cov(F(z_i), G(z_j)) = (1 / 4 n_{l-1}) sum V_{(ef)(gh)} <d_e d_f F> <d_g d_h G> (the cross
cumulant V / n_{l-1} of the layer, 6 of the 4! derivative orders, the term that gives the
plain propagation), here with F = z_a z_b, <d_e d_f F> = d_ea d_fb + d_eb d_fa. So
    V^(l+1) = xi^4 V^(l) + gamma^4 [plain right-hand side, V^(l) propagated through D]
              + xi^2 gamma^2 C_W (X_{abcd} + X_{cdab}),
    X_{abcd} = sum_ef (K_ae K_bf + (n_l / 2 n_{l-1}) V^(l)_{(ab)(ef)}) D^{ef}_{cd}.
Deep linear, one input, no biases: V'/K'^2 = V/K^2 + 2 (1 - xi^4 / chi^2), chi = xi^2 + gamma^2 C_W,
the 1/n expansion of the exact finite-width recursion (tests/test_residual.py); ReLU at
criticality (gamma^2 C_W = 2 (1 - xi^2) = g): V'/K'^2 = V/K^2 + 5 g^2 / 4 + 2 xi^2 g
(5 for xi = 0). Haar weights: given z, the u_i are the rows of s O S plus biases, with
E[u_ib u_jd | S] = 0 for i != j (E[O_ik O_jm] = d_ij d_km / N) and E[u_ia u_ib | S] = Ghat_ab,
so only the gamma^4 term changes, by the Weingarten cross cumulant above: the Haar
recursion with residual connections is the Gaussian one plus gamma^4 times the Haar term.
The same-neuron relation holds as well (by induction over the layers: the xi^4 term
carries it from layer l, and the other terms are those of the distinct-neuron sum over
the three pairings).
"""

import itertools
import math

import numpy as np

from nnft_fast.run import validate_inputs

from .gaussian_integrals import numpy_activation
from .infinite_width import is_residual_layer, kernel_recursion

NODES_BY_DIMENSION = {1: 160, 2: 80, 3: 40, 4: 22}


def gaussian_average(fn, cov, n_nodes=None):
    """<fn(z)> for z ~ N(0, cov) (d <= 4 dimensions); fn maps (..., d) points to values."""
    d = cov.shape[0]
    n_nodes = n_nodes or NODES_BY_DIMENSION[d]
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / math.sqrt(2.0 * math.pi)
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))  # cov = root root^T, PSD-safe
    grid = np.stack(np.meshgrid(*([x] * d), indexing="ij"), axis=-1).reshape(-1, d)
    weights = np.prod(
        np.stack(np.meshgrid(*([w] * d), indexing="ij"), axis=-1).reshape(-1, d), axis=1
    )
    return float(np.dot(weights, fn(grid @ root.T)))


def _four_point_moment(sigma, k, idx):
    """<s_idx0 s_idx1 s_idx2 s_idx3> under N(0, K)."""
    distinct = sorted(set(idx))
    pos = [distinct.index(i) for i in idx]
    cov = k[np.ix_(distinct, distinct)]
    return gaussian_average(lambda z: np.prod([sigma(z[:, p]) for p in pos], axis=0), cov)


def _second_derivative_average(sigma, k, a, b):
    """D_ab: B x B matrix of <d^2 (s_a s_b)/dz_e dz_f>, non-zero only on e, f in {a, b}."""
    nb = k.shape[0]
    out = np.zeros((nb, nb))
    idx = [a] if a == b else [a, b]
    m = k[np.ix_(idx, idx)]
    minv = np.linalg.pinv(m)
    pa, pb = (0, 0) if a == b else (0, 1)
    avg = np.empty((len(idx), len(idx)))
    for i, j in itertools.product(range(len(idx)), repeat=2):
        avg[i, j] = gaussian_average(
            lambda z, i=i, j=j: sigma(z[:, pa]) * sigma(z[:, pb]) * (z[:, i] * z[:, j] - m[i, j]), m
        )
    out[np.ix_(idx, idx)] = minv @ avg @ minv
    return out


def _haar_cross_cumulant(c, fan_in, fan_out):
    """-(n_l / N)(C_ac C_bd + C_ad C_bc), N = max(n_l, n_{l+1}): the Haar weights' term."""
    return -(fan_in / max(fan_in, fan_out)) * (
        np.einsum("ac,bd->abcd", c, c) + np.einsum("ad,bc->abcd", c, c)
    )


def _residual_vertex(network, layer, v, plain, k, d, ratio):
    """V^(layer) of a residual layer (module docstring): xi^4 V + gamma^4 (plain right-hand
    side) + xi^2 gamma^2 C_W (X_abcd + X_cdab) from the layer below's V, K, D (d[a, b, e, f])
    and ratio n_{l-1} / n_{l-2} (1 wherever xi != 0)."""
    xi = network.xi_array[layer - 1]
    gamma = network.gamma_array[layer - 1]
    cw = network.cw_array[layer - 1]
    mixed = np.einsum("ae,bf,cdef->abcd", k, k, d) + 0.5 * ratio * np.einsum(
        "abef,cdef->abcd", v, d
    )
    mixed = mixed + np.transpose(mixed, (2, 3, 0, 1))
    xi2, gamma2 = xi * xi, gamma * gamma
    return xi2 * xi2 * ratio * v + gamma2 * gamma2 * plain + xi2 * gamma2 * cw * mixed


def vertex_recursion(network, X):
    """Leading-order vertices V^(l) (B, B, B, B) for l = 1..L, Gaussian or Haar weights.

    Returns (kernels, vertices): the infinite-width K^(l) and V^(l) lists.
    """
    if network.init not in ("gaussian", "orthogonal"):
        raise ValueError(
            f"vertex_recursion covers gaussian and orthogonal weights; got init={network.init!r}"
        )
    haar = network.init == "orthogonal"
    x = validate_inputs(network, X)
    sigma = numpy_activation(network.activation)
    kernels = kernel_recursion(network, x)
    nb = x.shape[0]
    widths = network.widths
    v = np.zeros((nb,) * 4)
    if haar:
        v = _haar_cross_cumulant(kernels[0] - network.cb_array[0], widths[0], widths[1])
    vertices = [v]
    for layer in range(1, network.n_layers):
        k = kernels[layer - 1]
        cw = network.cw_array[layer]
        four = {}
        pair = np.empty((nb, nb))
        for a, b in itertools.product(range(nb), repeat=2):
            pair[a, b] = gaussian_average(
                lambda z: sigma(z[:, 0]) * sigma(z[:, 1]), k[np.ix_([a, b], [a, b])]
            )
        for idx in itertools.combinations_with_replacement(range(nb), 4):
            four[idx] = _four_point_moment(sigma, k, idx)
        d = np.array(
            [[_second_derivative_average(sigma, k, a, b) for b in range(nb)] for a in range(nb)]
        )  # d[a, b, e, f]
        ratio = widths[layer] / widths[layer - 1]
        new = np.empty_like(v)
        for a, b, c, e in itertools.product(range(nb), repeat=4):
            new[a, b, c, e] = (
                cw * cw * (four[tuple(sorted((a, b, c, e)))] - pair[a, b] * pair[c, e])
            )
        propagated = np.einsum("efgh,abef,cdgh->abcd", v, d, d)
        plain = new + 0.25 * cw * cw * ratio * propagated
        if haar:
            plain = plain + _haar_cross_cumulant(cw * pair, widths[layer], widths[layer + 1])
        if is_residual_layer(network, layer + 1):
            plain = _residual_vertex(network, layer + 1, v, plain, k, d, ratio)
        v = plain
        vertices.append(v)
    return kernels, vertices


def same_neuron_connected(vertex, fan_in):
    """(V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)) / n_{l-1}: leading-order same-neuron function."""
    return (vertex + np.einsum("acbd->abcd", vertex) + np.einsum("adbc->abcd", vertex)) / fan_in
