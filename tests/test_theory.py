"""Theory module: closed forms against quadrature and exact values, recursions against
measured ensembles (z-scores), criticality against the known critical points."""

import math

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.theory import (
    find_critical,
    kernel_recursion,
    ntk_recursion,
    susceptibilities,
    vertex_recursion,
)
from nnft_fast.theory.gaussian_integrals import NUMPY_ACTIVATIONS, closed_form_pair, quadrature_pair

SMOOTH_CLOSED_FORMS = ("linear", "erf", "sin", "cos", "exp")
COVARIANCES = [(1.3, 0.4, 0.8), (0.5, -0.3, 0.9), (2.0, 1.99, 2.0), (0.7, 0.0, 0.2)]


@pytest.mark.parametrize("name", SMOOTH_CLOSED_FORMS)
@pytest.mark.parametrize("cov", COVARIANCES)
def test_closed_forms_equal_quadrature(name, cov):
    s = NUMPY_ACTIVATIONS[name]
    exact = closed_form_pair(name, *cov)
    assert quadrature_pair(s, s, *cov, n_nodes=120) == pytest.approx(exact, rel=1e-10, abs=1e-12)


def test_relu_arccos_special_values():
    kaa, kbb = 1.7, 0.6
    # Equal inputs: <relu(z)^2> = K/2; orthogonal inputs: sqrt(Kaa Kbb)/(2 pi);
    # opposite inputs: 0 (one of u, -u is negative).
    assert closed_form_pair("relu", kaa, kaa, kaa) == pytest.approx(kaa / 2, rel=1e-14)
    assert closed_form_pair("relu", kaa, 0.0, kbb) == pytest.approx(
        math.sqrt(kaa * kbb) / (2 * math.pi), rel=1e-14
    )
    assert closed_form_pair("relu", kaa, -kaa, kaa) == pytest.approx(0.0, abs=1e-14)


def test_leaky_relu_closed_form_matches_fine_quadrature():
    s = NUMPY_ACTIVATIONS["leaky_relu"]
    # The kink limits quadrature to algebraic convergence: compare loosely.
    for cov in COVARIANCES[:2]:
        assert quadrature_pair(s, s, *cov, n_nodes=250) == pytest.approx(
            closed_form_pair("leaky_relu", *cov), rel=5e-3
        )


def test_kernel_recursion_linear_is_exact_product():
    net = nf.Network((3, 5, 5, 5), "linear", "gaussian", cw=[1.5, 0.8, 2.0], cb=[0.1, 0.2, 0.3])
    x = np.array([[1.0, 2.0, 0.5], [-1.0, 0.3, 0.0]])
    ks = kernel_recursion(net, x)
    k = 0.1 + 1.5 * x @ x.T / 3
    for layer, (cw, cb) in enumerate(zip([1.5, 0.8, 2.0], [0.1, 0.2, 0.3])):
        if layer:
            k = cb + cw * k
        np.testing.assert_allclose(ks[layer], k, rtol=1e-13)


@pytest.mark.parametrize(
    "activation,cw,cb", [("relu", 2.0, 0.0), ("erf", 1.5, 0.1), ("tanh", 1.0, 0.05)]
)
def test_kernel_recursion_layer2_matches_ensemble(activation, cw, cb):
    """K^(2) is exact at any width (z^(1) is exactly Gaussian): measured vs predicted."""
    net = nf.Network((4, 16, 16), activation, "gaussian", cw=cw, cb=cb)
    x = np.array([[1.0, 0.5, -0.2, 0.3], [0.2, -1.0, 0.4, 0.8], [0.9, 0.1, 0.1, -0.5]])
    ens = nf.sample(net, x, 40_000, seed=11, observables=("two_point",))
    predicted = kernel_recursion(net, x)
    for layer in (1, 2):
        z = ens.two_point(layer).zscore(predicted[layer - 1])
        assert np.max(np.abs(z)) < 4.5, (layer, z)
    # Strength: a wrong C_W normalisation (n_0 instead of n_1 in the second layer's
    # variance, i.e. a factor 4) is rejected by many sigma.
    wrong = cb + (predicted[1] - cb) * 4 / 16
    assert np.max(np.abs(ens.two_point(2).zscore(wrong))) > 20


def test_ntk_recursion_relu_criticality_closed_form():
    """ReLU at criticality with lambda_b = 0: Theta^(l) = l * lambda_W * K / 2."""
    net = nf.Network((3,) + (32,) * 6, "relu", "gaussian", cw=2.0, cb=0.0)
    x = np.array([[1.0, -0.4, 2.0]])
    k = 2.0 * float((x @ x.T)[0, 0]) / 3
    thetas = ntk_recursion(net, x, lambda_b=0.0, lambda_w=0.7)
    for layer, theta in enumerate(thetas, start=1):
        assert float(theta[0, 0]) == pytest.approx(layer * 0.7 * k / 2, rel=1e-12)


def test_ntk_recursion_linear_closed_form():
    """Linear, one input: Theta^(l) = sum_{l'<=l} (lambda_b + lambda_W K^(l'-1)) C_W^(l-l')
    with K^(0) = |x|^2/n_0, i.e. every layer adds its own contribution and earlier ones are
    multiplied by C_W per layer."""
    cw, cb, lb, lw = 1.3, 0.2, 0.5, 0.9
    net = nf.Network((2, 8, 8, 8), "linear", "gaussian", cw=cw, cb=cb)
    x = np.array([[0.6, -1.1]])
    k_prev = float((x @ x.T)[0, 0]) / 2
    theta = 0.0
    ks = kernel_recursion(net, x)
    for layer, measured in enumerate(ntk_recursion(net, x, lb, lw), start=1):
        theta = lb + lw * k_prev + (cw * theta if layer > 1 else 0.0)
        assert float(measured[0, 0]) == pytest.approx(theta, rel=1e-12)
        k_prev = float(ks[layer - 1][0, 0])


@pytest.mark.parametrize(
    "activation,cb,cw,cls",
    [
        ("relu", 0.0, 2.0, "scale-invariant"),
        ("linear", 0.0, 1.0, "scale-invariant"),
        ("tanh", 0.0, 1.0, "K*=0"),
        ("sin", 0.0, 1.0, "K*=0"),
        ("erf", 0.0, math.pi / 4, "K*=0"),
    ],
)
def test_known_critical_points(activation, cb, cw, cls):
    point = find_critical(activation)
    assert point.universality_class == cls
    assert point.cb == pytest.approx(cb, abs=1e-12)
    assert point.cw == pytest.approx(cw, rel=1e-9)


@pytest.mark.parametrize(
    "activation,k_star,cb,cw",
    [
        ("swish", 14.32, 0.555, 1.988),  # Roberts & Yaida §5.3
        ("gelu", 3.56, 0.173, 1.983),
    ],
)
def test_nonzero_fixed_point_criticality(activation, k_star, cb, cw):
    point = find_critical(activation)
    assert point.universality_class == "K*>0"
    assert point.k_star == pytest.approx(k_star, rel=2e-3)
    assert point.cb == pytest.approx(cb, rel=3e-3)
    assert point.cw == pytest.approx(cw, rel=1e-3)
    chi_par, chi_perp = susceptibilities(activation, point.cb, point.cw, point.k_star)
    assert chi_par == pytest.approx(1.0, abs=1e-9)
    assert chi_perp == pytest.approx(1.0, abs=1e-9)


def test_susceptibilities_relu_and_tanh():
    assert susceptibilities("relu", 0.0, 3.0, 0.7) == pytest.approx((1.5, 1.5), rel=1e-12)
    chi_par, chi_perp = susceptibilities("tanh", 0.0, 1.0, 0.5)
    assert chi_par < 1.0 and chi_perp < 1.0  # tanh at C_W = 1 is critical only at K -> 0


def test_no_criticality_is_an_error():
    with pytest.raises(ValueError, match="no critical initialisation"):
        find_critical("exp")
    with pytest.raises(ValueError, match="positive"):
        susceptibilities("tanh", 0.0, 1.0, 0.0)


@pytest.mark.parametrize("activation,cw,slope", [("linear", 1.0, 2.0), ("relu", 2.0, 5.0)])
def test_vertex_recursion_single_input_closed_forms(activation, cw, slope):
    """Leading order, criticality, one input: V^(l)/K^2 = 2(l-1) linear, 5(l-1) ReLU."""
    net = nf.Network((3,) + (40,) * 6, activation, "gaussian", cw=cw)
    ks, vs = vertex_recursion(net, np.array([[1.0, 0.3, -0.5]]))
    for layer, (k, v) in enumerate(zip(ks, vs), start=1):
        assert float(v[0, 0, 0, 0] / k[0, 0] ** 2) == pytest.approx(
            slope * (layer - 1), rel=1e-6, abs=1e-9
        )


def test_vertex_recursion_tanh_grows_like_two_thirds_layer():
    net = nf.Network((3,) + (40,) * 30, "tanh", "gaussian", cw=1.0)
    ks, vs = vertex_recursion(net, np.array([[0.3, 0.2, -0.1]]))
    ratio = [float(v[0, 0, 0, 0] / k[0, 0] ** 2) for k, v in zip(ks, vs)]
    slope = (ratio[-1] - ratio[-11]) / 10
    assert slope == pytest.approx(2 / 3, rel=0.1)


def test_vertex_recursion_matches_ensemble_several_inputs():
    """Layer 2 is exact at any width; layer 3 agrees up to O(1/n) (5% allowance at n=64)."""
    net = nf.Network((3, 64, 64, 64), "relu", "gaussian", cw=2.0)
    x = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.4]])
    _, vs = vertex_recursion(net, x)
    ens = nf.sample(net, x, 100_000, seed=5)
    layer2 = ens.vertex(2)
    assert np.max(np.abs(layer2.zscore(vs[1]))) < 4.5
    layer3 = ens.vertex(3)
    scale = np.max(np.abs(vs[2]))
    assert np.all(np.abs(layer3.value - vs[2]) < 4.5 * layer3.error + 0.05 * scale)
    # Strength: dropping the propagated term (the n_l/n_{l-1} V D D part) fails badly.
    _, v_no_prop = vertex_recursion(nf.Network((3, 64, 64), "relu", "gaussian", cw=2.0), x)
    assert np.max(np.abs(layer3.value - v_no_prop[1])) > 10 * np.max(layer3.error)


# ------------------------------------------------------- Haar-orthogonal leading-order vertex


def test_orthogonal_vertex_single_input_closed_forms():
    """Haar weights, one input, criticality, square hidden layers (n_1 >= n_0):
    layer 1 is a vector uniform on a sphere: V/K^2 = -2 n_0 / max(n_0, n_1);
    linear: each layer adds 2K^2 (weight fluctuation) - 2K^2 (Haar cross cumulant), and
    propagates V unchanged, so V/K^2 = -2 for l >= 2;
    ReLU (C_W = 2): each layer adds 5K^2 - 2K^2, so V/K^2 = 3(l - 1) - 2 for l >= 2."""
    x = np.array([[1.0, 0.3, -0.5]])
    for activation, cw, expected in (
        ("linear", 1.0, lambda l: -2.0),
        ("relu", 2.0, lambda l: 3.0 * (l - 1) - 2.0),
    ):
        net = nf.Network((3,) + (40,) * 6, activation, "orthogonal", cw=cw)
        ks, vs = vertex_recursion(net, x)
        ratios = [float(v[0, 0, 0, 0] / k[0, 0] ** 2) for k, v in zip(ks, vs)]
        assert ratios[0] == pytest.approx(-2.0 * 3 / 40, rel=1e-9)
        for layer, r in enumerate(ratios[1:], start=2):
            assert r == pytest.approx(expected(layer), rel=1e-6, abs=1e-9)


def haar_layer_one_vertex(x, cw, n0, n1):
    """Exact V^(1) = n_0 x distinct-neuron connected function for z = s O x + b, O the
    truncated N x N Haar matrix (N = max(n_0, n_1), s^2 = C_W N / n_0), from the O(N)
    Weingarten function for two distinct rows:
      E[y_ia y_ib y_jc y_jd] = s^4 [(N+1) M_ab M_cd - M_ac M_bd - M_ad M_bc] / (N(N-1)(N+2)),
    M = x x^T, minus K_ab K_cd with E[y_a y_b] = s^2 M_ab / N (biases cancel)."""
    big_n = max(n0, n1)
    s2 = cw * big_n / n0
    m = x @ x.T
    mm = np.einsum("ab,cd->abcd", m, m)
    raw = (
        s2**2
        * ((big_n + 1) * mm - np.einsum("ac,bd->abcd", m, m) - np.einsum("ad,bc->abcd", m, m))
        / (big_n * (big_n - 1) * (big_n + 2))
    )
    return n0 * (raw - (s2 / big_n) ** 2 * mm)


@pytest.mark.parametrize("widths", [(6, 4, 3), (3, 5, 5)], ids=["narrowing", "widening"])
def test_orthogonal_layer_one_vertex_exact(widths):
    """Measured V^(1) of Haar layers equals the exact Weingarten value (not zero, as for
    Gaussian weights), and the leading-order recursion is within O(1/N) of it."""
    x = np.array(
        [
            [1.0, 0.3, -0.5, 0.2, 0.1, 0.7][: widths[0]],
            [-0.4, 0.8, 0.1, -0.3, 0.6, 0.0][: widths[0]],
        ]
    )
    net = nf.Network(widths, "tanh", "orthogonal", cw=1.5, cb=0.2)
    exact = haar_layer_one_vertex(x, 1.5, widths[0], widths[1])
    ens = nf.sample(net, x, 60_000, seed=17)
    measured = ens.vertex(1)
    assert np.max(np.abs(measured.zscore(exact))) < 4.5
    assert np.max(np.abs(measured.zscore(0.0))) > 10  # a Gaussian-weight answer fails
    _, vs = vertex_recursion(net, x)
    big_n = max(widths[:2])
    assert np.max(np.abs(vs[0] - exact)) < 4.0 / big_n * np.max(np.abs(exact))


def test_orthogonal_vertex_recursion_matches_ensemble():
    """Deeper Haar layers: measured V - recursion shrinks like 1/n (the four-point function
    itself is then right to O(1/n^2)), while the Gaussian-weight recursion stays far off."""
    x = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.4]])
    deviation = {}
    for n in (32, 128):
        net = nf.Network((3, n, n, n), "relu", "orthogonal", cw=2.0)
        _, vs = vertex_recursion(net, x)
        _, vs_gauss = vertex_recursion(nf.Network((3, n, n, n), "relu", "gaussian", cw=2.0), x)
        ens = nf.sample(net, x, 100_000, seed=23 + n)
        for layer in (2, 3):
            est = ens.vertex(layer)
            scale = np.max(np.abs(vs[layer - 1]))
            deviation[n, layer] = np.max(np.abs(est.value - vs[layer - 1])) / scale
            assert deviation[n, layer] < 16.0 / n  # O(1/n) with a modest coefficient
            assert np.max(np.abs(est.zscore(vs_gauss[layer - 1]))) > 20
    for layer in (2, 3):  # 4x the width: at least 2x closer (pure 1/n gives 4x)
        assert deviation[128, layer] < deviation[32, layer] / 2
