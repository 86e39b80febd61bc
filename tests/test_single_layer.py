"""Single-hidden-layer NNFT (Halverson-Maiti-Stoner): exact two-point and connected
four-point functions of the Gauss-, Erf- and ReLU-nets against closed forms, independent
quadrature and measured ensembles (z-scores from the package's own error bars)."""

import itertools
import math

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.theory.single_layer import (
    SingleLayerNet,
    erf_moment,
    erf_net,
    gauss_moment,
    gauss_net,
    relu_moment,
    relu_net,
)
from scipy.special import erf

X3 = np.array([[0.8, -0.3], [0.1, 0.9], [-0.6, -0.5]])  # d = 2, B = 3 distinct inputs
Z_MAX = 4.5


def relu(x):
    return np.maximum(x, 0.0)


def gaussian_average(fn, cov, n_nodes):
    """<fn(z)>, z ~ N(0, cov): tensor Gauss-Hermite on a symmetric square root of cov."""
    d = cov.shape[0]
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / math.sqrt(2 * math.pi)
    evals, evecs = np.linalg.eigh(cov)
    root = evecs * np.sqrt(np.clip(evals, 0.0, None))
    grid = np.stack(np.meshgrid(*([x] * d), indexing="ij"), axis=-1).reshape(-1, d)
    weights = np.prod(
        np.stack(np.meshgrid(*([w] * d), indexing="ij"), axis=-1).reshape(-1, d), axis=1
    )
    return float(np.dot(weights, fn(grid @ root.T)))


def _hermite_1d(fn, k, n_nodes=200):
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    return float(np.dot(w, fn(math.sqrt(k) * x)) / math.sqrt(2 * math.pi))


def _wick_bracket(g, m, factor):
    gg = np.einsum("ab,cd->abcd", g, g)
    return factor * m - gg - np.einsum("acbd->abcd", gg) - np.einsum("adbc->abcd", gg)


# ----------------------------------------------------------------------- closed forms


def test_gauss_net_two_point_is_the_distance_formula():
    """G2_ab = var_b1 + var_w1 exp(-var_w0 |x_a - x_b|^2 / (2 d)): translation invariant,
    independent of var_b0 (the normalisation removes it)."""
    x = np.array([[0.3, -1.2, 0.5], [1.0, 0.2, -0.4], [-0.7, 0.6, 0.9], [0.3, -1.2, 0.5]])
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    for var_b0 in (0.0, 0.7):
        net = gauss_net(3, 5, var_w0=1.7, var_b0=var_b0, var_w1=0.9, var_b1=0.25)
        np.testing.assert_allclose(net.two_point(x), 0.25 + 0.9 * np.exp(-1.7 * d2 / 6), rtol=1e-13)
        shifted = net.two_point(x + np.array([0.4, -0.1, 2.0]))
        np.testing.assert_allclose(shifted, net.two_point(x), rtol=1e-12)


def test_gauss_net_four_point_closed_forms():
    """One input: M = E exp(4z - 4K) = exp(4K), G = 1, so G4c = (var_w1^2/N)(3 e^{4K} - 3).
    Two inputs, slots (a, a, b, b): M = exp(1^T K 1 / 2 - tr K) = exp(4 K_ab),
    G_ab = exp(K_ab - (K_aa + K_bb)/2)."""
    net = gauss_net(2, 6, var_w0=0.8, var_b0=0.1, var_w1=1.4, var_b1=0.3)
    k = net.first_layer_kernel(X3)
    g4 = net.four_point_connected(X3)
    for a in range(3):
        expected = 1.4**2 / 6 * (3 * math.exp(4 * k[a, a]) - 3)
        assert g4[a, a, a, a] == pytest.approx(expected, rel=1e-13)
    kaa, kbb, kab = k[0, 0], k[1, 1], k[0, 1]
    m_aabb = math.exp(4 * kab)
    gab = math.exp(kab - 0.5 * (kaa + kbb))
    expected = 1.4**2 / 6 * (3 * m_aabb - 1 - 2 * gab**2)
    assert g4[0, 0, 1, 1] == pytest.approx(expected, rel=1e-13)
    assert gauss_moment(np.full((4, 4), 0.3)) == pytest.approx(math.exp(1.2), rel=1e-14)


def test_relu_moments_closed_forms():
    """E relu^4 = 3K^2/2, E relu^2 = K/2; two inputs: E relu_a^2 relu_b^2 is the degree-2
    arc-cosine kernel K_aa K_bb/(2 pi)[3 sin t cos t + (pi - t)(1 + 2 cos^2 t)]."""
    assert relu_moment([[1.7]], [4]) == pytest.approx(1.5 * 1.7**2, rel=1e-14)
    assert relu_moment([[1.7]], [2]) == pytest.approx(0.85, rel=1e-14)
    assert relu_moment([[1.7]], [1]) == pytest.approx(math.sqrt(1.7 / (2 * math.pi)), rel=1e-14)
    for kaa, kab, kbb in [(1.3, 0.4, 0.7), (0.5, -0.45, 0.9), (2.0, 0.0, 0.3)]:
        c = kab / math.sqrt(kaa * kbb)
        t = math.acos(c)
        j2 = kaa * kbb / (2 * math.pi) * (3 * math.sin(t) * c + (math.pi - t) * (1 + 2 * c * c))
        j1 = math.sqrt(kaa * kbb) / (2 * math.pi) * (math.sin(t) + (math.pi - t) * c)
        cov = [[kaa, kab], [kab, kbb]]
        assert relu_moment(cov, [2, 2]) == pytest.approx(j2, rel=1e-13)
        assert relu_moment(cov, [1, 1]) == pytest.approx(j1, rel=1e-13)


def test_relu_net_four_point_single_and_two_inputs():
    """One input: G4c = (var_w1^2/N)(3 * 3K^2/2 - 3 K^2/4) = (15/4) K^2 var_w1^2 / N, and
    same-neuron = 3 x distinct-neuron. Two inputs (a, a, b, b): 3 J2 - G_aa G_bb - 2 G_ab^2."""
    net = relu_net(2, 5, var_w0=2.0, var_b0=0.2, var_w1=1.2, var_b1=0.4)
    k = net.first_layer_kernel(X3)
    same, distinct = net.four_point_connected(X3), net.four_point_connected(X3, "distinct")
    for a in range(3):
        assert same[a, a, a, a] == pytest.approx(3.75 * k[a, a] ** 2 * 1.44 / 5, rel=1e-13)
        assert same[a, a, a, a] == pytest.approx(3 * distinct[a, a, a, a], rel=1e-13)
    kaa, kab, kbb = k[0, 0], k[0, 1], k[1, 1]
    c = kab / math.sqrt(kaa * kbb)
    t = math.acos(c)
    j2 = kaa * kbb / (2 * math.pi) * (3 * math.sin(t) * c + (math.pi - t) * (1 + 2 * c * c))
    gab = math.sqrt(kaa * kbb) / (2 * math.pi) * (math.sin(t) + (math.pi - t) * c)
    expected = 1.44 / 5 * (3 * j2 - kaa * kbb / 4 - 2 * gab**2)
    assert same[0, 0, 1, 1] == pytest.approx(expected, rel=1e-12)
    assert net.two_point(X3)[0, 1] == pytest.approx(0.4 + 1.2 * gab, rel=1e-13)


def test_erf_moments_against_quadrature():
    """erf is smooth: tensor Gauss-Hermite converges spectrally, an independent check of
    the sign-moment (Price path) integral, one to four distinct inputs."""
    k = 0.8
    assert erf_moment(np.full((4, 4), k)) == pytest.approx(
        _hermite_1d(lambda z: erf(z) ** 4, k), rel=1e-10
    )
    assert erf_moment(np.full((2, 2), k)) == pytest.approx(
        2 / math.pi * math.asin(2 * k / (1 + 2 * k)), rel=1e-14
    )
    rng = np.random.default_rng(7)
    for n in (2, 3, 4):
        a = rng.normal(size=(n, n))
        cov = a @ a.T / (4 * n) + 0.1 * np.eye(n)  # moderate K: smooth on the GH scale
        for idx in set(itertools.product(range(n), repeat=4)):
            if len(set(idx)) != n or idx != tuple(sorted(idx)):
                continue
            sub = cov[np.ix_(idx, idx)]
            pos = [sorted(set(idx)).index(i) for i in idx]
            quad = gaussian_average(
                lambda z, pos=pos: np.prod([erf(z[:, p]) for p in pos], axis=0),
                cov,
                n_nodes={2: 80, 3: 40, 4: 30}[n],
            )
            assert erf_moment(sub) == pytest.approx(quad, rel=1e-8, abs=1e-12), idx


@pytest.mark.parametrize("k", [10.0, 1e3, 1e6])
def test_erf_moment_large_variance(k):
    """erf(z)^4 at huge K (step-like; Gauss-Hermite fails): adaptive 1-D quadrature."""
    from scipy import integrate

    dens = lambda z: erf(z) ** 4 * math.exp(-z * z / (2 * k)) / math.sqrt(2 * math.pi * k)
    edges = [0.0, 5.0, 20.0 * math.sqrt(k) + 10.0]
    ref = 2 * sum(
        integrate.quad(dens, a, b, epsabs=1e-15, epsrel=1e-13, limit=500)[0]
        for a, b in zip(edges, edges[1:])
    )
    assert erf_moment(np.full((4, 4), k)) == pytest.approx(ref, rel=1e-9)


def test_relu_moments_agree_across_methods():
    """The three exact ReLU paths (angular for rank <= 2, Stein for full rank, cone
    triangulation for rank 3 with 4 inputs) agree where they meet, and with quadrature."""
    from nnft_fast.theory.single_layer import _truncated_full_rank, _truncated_rank2

    cov = np.array([[1.3, 0.4], [0.4, 0.7]])
    chol = np.linalg.cholesky(cov)
    for powers in [(1, 1), (1, 3), (3, 1), (2, 2), (1, 2)]:
        assert _truncated_full_rank(cov, powers, {}) == pytest.approx(
            _truncated_rank2(chol, powers), rel=1e-12
        )
    rng = np.random.default_rng(3)
    # Rank 3 (4 inputs) against the full-rank path on a slightly perturbed covariance:
    # the moment moves by O(eps).
    a = rng.normal(size=(4, 3))
    cov3 = a @ a.T
    v = rng.normal(size=4)
    exact = relu_moment(cov3)
    assert exact > 0
    assert relu_moment(cov3 + 1e-9 * np.outer(v, v)) == pytest.approx(exact, rel=1e-7)
    # Rank 2 (4 inputs, e.g. d = 1 with bias) against full rank.
    a = rng.normal(size=(4, 2))
    a[:, 0] = np.abs(a[:, 0]) + 0.5
    cov2 = a @ a.T
    assert relu_moment(cov2 + 1e-9 * np.eye(4)) == pytest.approx(relu_moment(cov2), rel=1e-7)
    # Full rank 3 with repeated inputs: Gauss-Hermite (kinks: algebraic convergence).
    a = rng.normal(size=(3, 3))
    cov = a @ a.T / 3 + 0.2 * np.eye(3)
    for powers in [(1, 1, 1), (2, 1, 1), (1, 1, 2)]:
        quad = gaussian_average(
            lambda z, p=powers: np.prod(relu(z) ** np.array(p), axis=1), cov, n_nodes=60
        )
        assert relu_moment(cov, powers) == pytest.approx(quad, rel=2e-3)
    # Opposite inputs (z_b = -z_a): relu_a relu_b = 0.
    assert relu_moment([[1.0, -1.0], [-1.0, 1.0]], [2, 2]) == pytest.approx(0.0, abs=1e-15)
    assert relu_moment([[0.0, 0.0], [0.0, 1.0]]) == 0.0


@pytest.mark.parametrize("make", [gauss_net, erf_net, relu_net])
def test_tensors_are_symmetric(make):
    net = make(2, 4, var_w0=1.1, var_b0=0.2, var_w1=0.7, var_b1=0.1)
    g2 = net.two_point(X3)
    np.testing.assert_allclose(g2, g2.T, rtol=0, atol=0)
    for neurons in ("same", "distinct"):
        g4 = net.four_point_connected(X3, neurons)
        pairs = (
            ("abdc", "bacd", "cdab")
            if neurons == "distinct"
            else ("".join(p) for p in itertools.permutations("abcd"))
        )
        for p in pairs:
            np.testing.assert_allclose(np.einsum(f"abcd->{p}", g4), g4, rtol=1e-12, atol=1e-15)
    # Width scales the connected function as 1/N, the two-point not at all.
    wide = make(2, 8, var_w0=1.1, var_b0=0.2, var_w1=0.7, var_b1=0.1)
    np.testing.assert_allclose(
        wide.four_point_connected(X3), net.four_point_connected(X3) / 2, rtol=1e-12
    )
    np.testing.assert_allclose(wide.two_point(X3), g2, rtol=1e-14)


# ------------------------------------------------------------- measurement vs formula

NETS = {
    "gauss": gauss_net(2, 4, var_w0=0.5, var_b0=0.05, var_w1=1.3, var_b1=0.2, n_out=8),
    "erf": erf_net(2, 4, var_w0=2.0, var_b0=0.3, var_w1=1.5, var_b1=0.1, n_out=8),
    "relu": relu_net(2, 4, var_w0=2.0, var_b0=0.2, var_w1=1.2, var_b1=0.1, n_out=8),
}


@pytest.fixture(scope="module")
def measured():
    """Same- and distinct-neuron measurements of the three nets on X3, 300k networks."""
    out = {}
    for seed, (kind, net) in enumerate(NETS.items()):
        two, same = net.measure(X3, 300_000, seed=10 + seed)
        _, distinct = net.measure(X3, 300_000, seed=10 + seed, neurons="distinct")
        out[kind] = two, same, distinct
    return out


@pytest.mark.parametrize("kind", list(NETS))
def test_measured_matches_exact(kind, measured):
    net = NETS[kind]
    two, same, distinct = measured[kind]
    assert np.max(np.abs(two.zscore(net.two_point(X3)))) < Z_MAX
    z_same = same.zscore(net.four_point_connected(X3))
    z_dist = distinct.zscore(net.four_point_connected(X3, "distinct"))
    assert np.max(np.abs(z_same)) < Z_MAX, z_same
    assert np.max(np.abs(z_dist)) < Z_MAX, z_dist
    # The connected function is resolved: at least the diagonal is many sigma from zero.
    assert np.min(np.abs(same.zscore(0.0)[np.diag_indices(3, 4)])) > 15


@pytest.mark.parametrize("kind", list(NETS))
def test_wrong_normalisations_are_rejected(kind, measured):
    """The same data reject E[w^4] = s^4 (factor 1 for 3), 1/N^2 for 1/N, and (Gauss-net)
    a missing output normalisation or output bias."""
    net = NETS[kind]
    two, same, _ = measured[kind]
    g, m = net.hidden_moments(X3)
    scale = net.var_w1**2 / net.width
    assert np.max(np.abs(same.zscore(scale * _wick_bracket(g, m, 1.0)))) > 15
    assert np.max(np.abs(same.zscore(net.four_point_connected(X3) / net.width))) > 15
    assert np.max(np.abs(same.zscore(net.four_point_connected(X3) * 1.25))) > 15
    assert np.max(np.abs(same.zscore(net.four_point_connected(X3) * 1.08))) > 5
    assert np.max(np.abs(two.zscore(net.two_point(X3) * 1.05))) > 15
    if kind == "gauss":
        c = net.output_scale(X3)
        assert np.all(c < 1)
        raw_two = (two.value - net.var_b1) / np.outer(c, c)
        assert np.max(np.abs((raw_two - net.two_point(X3)) / two.error)) > 15
        assert np.max(np.abs(two.zscore(net.two_point(X3) - net.var_b1))) > 15


@pytest.mark.parametrize(
    "net,x,label",
    [
        (
            relu_net(1, 4, var_w0=1.5, var_b0=0.4, var_w1=1.0, n_out=4),
            np.array([[1.0], [-0.5], [0.3]]),
            "rank 2 (d = 1 with bias), 3 inputs",
        ),
        (
            relu_net(2, 4, var_w0=2.0, var_b0=0.3, var_w1=1.0, n_out=4),
            np.array([[1.0, 0.0], [0.0, 1.0], [-0.7, 0.7], [0.4, -0.9]]),
            "rank 3, 4 inputs",
        ),
        (
            relu_net(3, 4, var_w0=2.0, var_b0=0.3, var_w1=1.0, n_out=4),
            np.array([[1.0, 0.0, 0.2], [0.0, 1.0, -0.3], [-0.7, 0.7, 0.5], [0.4, -0.9, -1.0]]),
            "rank 4, 4 inputs",
        ),
        (
            erf_net(3, 4, var_w0=2.0, var_b0=0.3, var_w1=1.0, n_out=4),
            np.array([[1.0, 0.0, 0.2], [0.0, 1.0, -0.3], [-0.7, 0.7, 0.5], [0.4, -0.9, -1.0]]),
            "erf, 4 inputs",
        ),
    ],
)
def test_measured_matches_exact_other_geometries(net, x, label):
    two, same = net.measure(x, 60_000, seed=21)
    assert np.max(np.abs(two.zscore(net.two_point(x)))) < Z_MAX, label
    z = same.zscore(net.four_point_connected(x))
    assert np.max(np.abs(z)) < Z_MAX, (label, z)


# ------------------------------------------------------------------- network and errors


def test_network_is_the_sampled_law():
    net = erf_net(3, 7, var_w0=1.5, var_b0=0.2, var_w1=0.8, var_b1=0.3, n_out=3)
    assert net.network == nf.Network((3, 7, 3), "erf", "gaussian", cw=[1.5, 0.8], cb=[0.2, 0.3])
    gauss = gauss_net(3, 7, var_w0=1.5, var_b0=0.2, var_w1=0.8, var_b1=0.3)
    assert gauss.network == nf.Network((3, 7, 2), "exp", "gaussian", cw=[1.5, 0.8], cb=[0.2, 0.0])
    x = np.array([[1.0, 2.0, -1.0]])
    assert gauss.output_scale(x)[0] == pytest.approx(math.exp(-(0.2 + 1.5 * 6 / 3)))
    np.testing.assert_array_equal(net.output_scale(x), [1.0])
    assert relu_net(2, 3).network.activation.name == "relu"


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(kind="tanh"), ValueError, "unknown kind"),
        (dict(kind=3), TypeError, "kind"),
        (dict(width=0), ValueError, "width"),
        (dict(width=2.5), TypeError, "width"),
        (dict(width=True), TypeError, "width"),
        (dict(d=0), ValueError, "d must"),
        (dict(n_out=0), ValueError, "n_out"),
        (dict(var_w0=-1.0), ValueError, "var_w0"),
        (dict(var_b1=float("nan")), ValueError, "var_b1"),
        (dict(var_w1=float("inf")), ValueError, "var_w1"),
        (dict(var_b0="0.1"), TypeError, "var_b0"),
        (dict(var_w0=1j), TypeError, "var_w0"),
    ],
)
def test_bad_parameters(kwargs, exc, match):
    base = dict(kind="relu", d=2, width=4)
    base.update(kwargs)
    with pytest.raises(exc, match=match):
        SingleLayerNet(**base)


def test_bad_inputs_and_options():
    net = relu_net(2, 4)
    with pytest.raises(ValueError, match="dimension 3"):
        net.two_point(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        net.four_point_connected(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="non-finite"):
        net.two_point([[0.0, np.nan]])
    with pytest.raises(TypeError, match="numeric"):
        net.two_point([["a", "b"]])
    with pytest.raises(ValueError, match="neurons"):
        net.four_point_connected(X3, neurons="both")
    with pytest.raises(ValueError, match="neurons"):
        net.measure(X3, 100, neurons="both")
    with pytest.raises(ValueError, match="n_networks"):
        net.measure(X3, 1)
    with pytest.raises(ValueError, match="dimension"):
        net.measure(np.ones((2, 5)), 100)
    with pytest.raises(ValueError, match="powers"):
        relu_moment(np.eye(2), [0, 1])
    with pytest.raises(ValueError, match="slots"):
        erf_moment(np.eye(3))
    # A 1-D input is one point.
    assert net.two_point([0.5, -0.5]).shape == (1, 1)
