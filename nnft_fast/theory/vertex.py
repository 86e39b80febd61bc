"""Four-point vertex at order 1/n for Gaussian weights (Roberts & Yaida ch. 4), B inputs.

With V^(l) = n_{l-1} x (connected distinct-neuron four-point function) (DESIGN.md §2):
    V^(1) = 0,
    V^(l+1)_{(ab)(cd)} = C_W^2 [<s_a s_b s_c s_d>_K - <s_a s_b>_K <s_c s_d>_K]
                         + (C_W^2 / 4) (n_l / n_{l-1})
                           sum_{e f g h} V^(l)_{(ef)(gh)} D^{ef}_{ab} D^{gh}_{cd},
    D^{ef}_{ab} = <d^2 (s_a s_b) / dz_e dz_f>_K,  s = sigma(z), K = K^(l) (infinite width),
and the same-neuron connected function is (V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)) / n_{l-1}.
D is computed without sigma'' by Gaussian integration by parts on the (z_a, z_b)
marginal M:  D = M^{-1} <s_a s_b (z z^T - M)> M^{-1}, so kinks (ReLU) are harmless.
Gaussian averages of up to four distinct inputs use tensor-product Gauss-Hermite
quadrature on the Cholesky factor of the marginal covariance.
Single input checks (exact at this order): V/K^2 = 2(l-1) linear, 5(l-1) ReLU at criticality.
"""
import itertools
import math

import numpy as np

from nnft_fast.sampling import validate_inputs

from .gaussian_integrals import numpy_activation
from .infinite_width import kernel_recursion

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
    weights = np.prod(np.stack(np.meshgrid(*([w] * d), indexing="ij"), axis=-1)
                      .reshape(-1, d), axis=1)
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
            lambda z, i=i, j=j: sigma(z[:, pa]) * sigma(z[:, pb]) * (z[:, i] * z[:, j] - m[i, j]),
            m)
    out[np.ix_(idx, idx)] = minv @ avg @ minv
    return out


def vertex_recursion(network, X):
    """Leading-order vertices V^(l) (B, B, B, B) for l = 1..L, Gaussian weights.

    Returns (kernels, vertices): the infinite-width K^(l) and V^(l) lists.
    """
    if network.init != "gaussian":
        raise ValueError("vertex_recursion is the Gaussian-weight recursion; "
                         f"got init={network.init!r}")
    x = validate_inputs(network, X)
    sigma = numpy_activation(network.activation)
    kernels = kernel_recursion(network, x)
    nb = x.shape[0]
    v = np.zeros((nb,) * 4)
    vertices = [v]
    for layer in range(1, network.n_layers):
        k = kernels[layer - 1]
        cw = network.cw_array[layer]
        four = {}
        pair = np.empty((nb, nb))
        for a, b in itertools.product(range(nb), repeat=2):
            pair[a, b] = gaussian_average(lambda z: sigma(z[:, 0]) * sigma(z[:, 1]),
                                          k[np.ix_([a, b], [a, b])])
        for idx in itertools.combinations_with_replacement(range(nb), 4):
            four[idx] = _four_point_moment(sigma, k, idx)
        d = np.array([[_second_derivative_average(sigma, k, a, b) for b in range(nb)]
                      for a in range(nb)])  # d[a, b, e, f]
        ratio = network.widths[layer] / network.widths[layer - 1]
        new = np.empty_like(v)
        for a, b, c, e in itertools.product(range(nb), repeat=4):
            new[a, b, c, e] = cw * cw * (four[tuple(sorted((a, b, c, e)))] - pair[a, b] * pair[c, e])
        propagated = np.einsum("efgh,abef,cdgh->abcd", v, d, d)
        v = new + 0.25 * cw * cw * ratio * propagated
        vertices.append(v)
    return kernels, vertices


def same_neuron_connected(vertex, fan_in):
    """(V_(ab)(cd) + V_(ac)(bd) + V_(ad)(bc)) / n_{l-1}: leading-order same-neuron function."""
    return (vertex + np.einsum("acbd->abcd", vertex) + np.einsum("adbc->abcd", vertex)) / fan_in
