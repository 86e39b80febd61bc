"""Ensemble statistics against the exact results of docs/exact-results.md.

Every test uses fixed seeds and judges agreement by z-scores computed from the package's
own (jackknife) error bars: the largest |z| over all checked entries must stay below
``Z_PASS``. Widths are small (4-16) so that the finite-width effects being tested are
large compared with the error bars, and each test carries *negative controls*: the same
ensemble compared with a plausible wrong formula (a missing factor, an off-by-one in the
width product, a biased estimator, the infinite-width value, a wrong normalisation) must
be rejected by many sigma (``Z_REJECT``). The negative controls are what make a pass
meaningful: they show that the error bars are small enough to see the bugs we care about.

Numba compiles one specialisation per (activation, method, dtype); this file uses
linear/relu/erf projected and linear/relu dense (float64 only).
"""

import math

import numpy as np
import pytest
from scipy.special import erf

import nnft_fast as nf
from nnft_fast.accumulators import layer_estimates

from ._zscores import Z_PASS, Z_REJECT, assert_agrees, assert_rejects


X1 = np.array([[0.9, -0.6, 1.3]])  # one input, n0 = 3
X3 = np.array(
    [
        [0.9, -0.6, 1.3],  # three inputs, n0 = 3
        [-0.4, 1.1, 0.5],
        [1.2, 0.3, -0.8],
    ]
)


# ----------------------------------------------------------------------------- helpers


def kurtosis(ens, layer):
    return ens.estimate(layer, lambda m: m.same_raw[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2)


def ratio(ens, layer, field):
    """field[0,0,0,0] / K_00^2 as a jackknife estimate."""
    return ens.estimate(
        layer, lambda m: getattr(m, field)[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2
    )


def pairings(k):
    """S_abcd = K_ab K_cd + K_ac K_bd + K_ad K_bc."""
    return (
        np.einsum("ab,cd->abcd", k, k)
        + np.einsum("ac,bd->abcd", k, k)
        + np.einsum("ad,bc->abcd", k, k)
    )


def widths_product(widths, layer, c):
    """prod_{l'=1}^{layer-1} (1 + c / n_l')."""
    return float(np.prod([1.0 + c / widths[lp] for lp in range(1, layer)]))


# ------------------------------------------------------------- deep linear, Gaussian

LIN_WIDTHS = (3, 8, 12, 6, 16)
LIN_CW = 1.3


@pytest.fixture(scope="module", params=["projected", "dense"])
def linear_gaussian(request):
    net = nf.Network(LIN_WIDTHS, activation="linear", init="gaussian", cw=LIN_CW)
    n = 400_000 if request.param == "projected" else 150_000
    seed = 11 if request.param == "projected" else 12
    return nf.sample(net, X1, n, seed=seed, method=request.param)


def test_deep_linear_gaussian(linear_gaussian):
    """K = C_W^l |x|^2/n0; E z^4/K^2 = 3 prod(1+2/n_l'); connected parts from the same
    chi-square recursion: distinct raw / K^2 = prod(1+2/n_l'), so
    C_distinct / K^2 = prod - 1 and C_same / K^2 = 3 (prod - 1) (exact: z at layer l is
    Gaussian given layer l-1 with variance C_W |z^(l-1)|^2 / n_{l-1})."""
    ens = linear_gaussian
    w = LIN_WIDTHS
    x2 = float(np.sum(X1**2)) / w[0]
    for layer in range(1, len(w)):
        k_exact = LIN_CW**layer * x2
        prod = widths_product(w, layer, 2.0)
        assert_agrees(ens.two_point(layer), k_exact, f"K^({layer})")
        assert_agrees(kurtosis(ens, layer), 3.0 * prod, f"kurtosis^({layer})")
        assert_agrees(
            ratio(ens, layer, "distinct_connected"), prod - 1.0, f"C_distinct/K^2 ({layer})"
        )
        assert_agrees(
            ratio(ens, layer, "same_connected"), 3.0 * (prod - 1.0), f"C_same/K^2 ({layer})"
        )
        assert_agrees(ens.vertex(layer), w[layer - 1] * (prod - 1.0) * k_exact**2, f"V^({layer})")
        if layer >= 2:
            # negative controls: one power of C_W too few; infinite width (Gaussian);
            # the product indexed by the layer's own width n_l instead of n_{l'<l}.
            assert_rejects(ens.two_point(layer), LIN_CW ** (layer - 1) * x2, "C_W^(l-1)")
            assert_rejects(kurtosis(ens, layer), 3.0, "Gaussian kurtosis")
            shifted = float(np.prod([1 + 2.0 / w[lp] for lp in range(2, layer + 1)]))
            assert_rejects(kurtosis(ens, layer), 3.0 * shifted, "prod over n_2..n_l")
            # biased distinct-neuron estimator: mean of G^2 (includes i == j terms)
            # instead of (n G G - Q)/(n - 1). Bias (Q - P)/n = 2 prod K^2 / n_l.
            n = w[layer]
            naive = ens.estimate(
                layer,
                lambda m: (
                    ((m.same_raw + (n - 1) * m.distinct_raw) / n)[..., 0, 0, 0, 0]
                    / m.two_point[..., 0, 0] ** 2
                ),
            )
            assert_rejects(naive, prod, "G^2 as distinct-neuron estimator")
    # layer 1 is exactly Gaussian with independent neurons: both connected parts vanish
    assert_agrees(ens.four_point(1, neurons="same"), 0.0, "C_same^(1)")
    assert_agrees(ens.four_point(1, neurons="distinct"), 0.0, "C_distinct^(1)")


# ---------------------------------------------------------------- deep ReLU, Gaussian

RELU_WIDTHS = (3, 8, 12, 6, 16)
RELU_CW = 1.7  # not 2, so that the (C_W/2)^(l-1) power is visible


@pytest.fixture(scope="module", params=["projected", "dense"])
def relu_gaussian(request):
    net = nf.Network(RELU_WIDTHS, activation="relu", init="gaussian", cw=RELU_CW)
    n = 400_000 if request.param == "projected" else 150_000
    seed = 21 if request.param == "projected" else 22
    return nf.sample(net, X1, n, seed=seed, method=request.param)


def test_deep_relu_gaussian(relu_gaussian):
    """K = (C_W/2)^(l-1) C_W |x|^2/n0; E z^4/K^2 = 3 prod(1+5/n_l') (the conditional
    variance is (C_W/n) * v * chi^2 with Binomial(n, 1/2) degrees of freedom), hence
    C_distinct / K^2 = prod - 1 and C_same / K^2 = 3 (prod - 1), exactly."""
    ens = relu_gaussian
    w = RELU_WIDTHS
    x2 = float(np.sum(X1**2)) / w[0]
    for layer in range(1, len(w)):
        k_exact = (RELU_CW / 2) ** (layer - 1) * RELU_CW * x2
        prod = widths_product(w, layer, 5.0)
        assert_agrees(ens.two_point(layer), k_exact, f"K^({layer})")
        assert_agrees(kurtosis(ens, layer), 3.0 * prod, f"kurtosis^({layer})")
        assert_agrees(
            ratio(ens, layer, "distinct_connected"), prod - 1.0, f"C_distinct/K^2 ({layer})"
        )
        assert_agrees(
            ratio(ens, layer, "same_connected"), 3.0 * (prod - 1.0), f"C_same/K^2 ({layer})"
        )
        if layer >= 2:
            # negative controls: C_W^l (no 1/2 per ReLU), the linear-network kurtosis
            # 3 prod(1+2/n) and the one-layer-short product.
            assert_rejects(
                ens.two_point(layer), RELU_CW**layer * x2 / 2 ** (layer - 2), "(C_W/2)^(l-2) C_W"
            )
            assert_rejects(
                kurtosis(ens, layer), 3.0 * widths_product(w, layer, 2.0), "linear-network kurtosis"
            )
            assert_rejects(
                kurtosis(ens, layer),
                3.0 * widths_product(w, layer - 1, 5.0),
                "product missing n_{l-1}",
            )
    assert_agrees(ens.four_point(1, neurons="same"), 0.0, "C_same^(1)")
    assert_agrees(ens.four_point(1, neurons="distinct"), 0.0, "C_distinct^(1)")


# ----------------------------------------------------------- orthogonal, deep linear

ORTHO_N = 8
ORTHO_WIDTHS = (3, ORTHO_N, ORTHO_N, ORTHO_N, ORTHO_N)
ORTHO_CW = 1.5


@pytest.mark.parametrize("method,seed", [("projected", 31), ("dense", 32)])
def test_orthogonal_deep_linear_sphere(method, seed):
    """Square hidden layers (and n1 >= n0): z^(l) = s O ... x is uniform on a sphere of
    deterministic radius, so the per-network kernel G is deterministic,
    K = C_W^l X X^T / n0 to rounding, and for every layer
        E[z_a z_b z_c z_d] = n/(n+2) S_abcd   (S = sum of the three pairings of K),
    i.e. kurtosis 3n/(n+2), C_same = -2/(n+2) S and, from exchangeability of the rows,
    C_distinct = (K_ab K_cd - n S_abcd/(n+2)) / (n-1)  (= -2 K^2/(n+2) for one input)."""
    net = nf.Network(ORTHO_WIDTHS, activation="linear", init="orthogonal", cw=ORTHO_CW)
    n_net = 200_000 if method == "projected" else 60_000
    ens = nf.sample(net, X3, n_net, seed=seed, method=method)
    n = ORTHO_N
    gram = X3 @ X3.T / X3.shape[1]
    for layer in range(1, len(ORTHO_WIDTHS)):
        k = ORTHO_CW**layer * gram
        k_est = ens.two_point(layer)
        np.testing.assert_allclose(k_est.value, k, rtol=1e-10, atol=1e-12)
        assert np.all(k_est.error < 1e-9 * np.max(np.abs(k)))  # no fluctuation at all
        s = pairings(k)
        kurt = ens.estimate(
            layer, lambda m: m.same_raw[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2
        )
        assert_agrees(kurt, 3.0 * n / (n + 2), f"kurtosis^({layer})")
        same = ens.four_point(layer, neurons="same")
        distinct = ens.four_point(layer, neurons="distinct")
        assert_agrees(same, -2.0 / (n + 2) * s, f"C_same^({layer})")
        c_distinct = (np.einsum("ab,cd->abcd", k, k) - n * s / (n + 2)) / (n - 1)
        assert_agrees(distinct, c_distinct, f"C_distinct^({layer})")
        # negative controls: Gaussian kurtosis 3; the Gaussian-weight value
        # 3 prod(1+2/n); a sphere of the wrong dimension (n-1: e.g. a lost column).
        assert_rejects(kurt, 3.0, "Gaussian kurtosis")
        assert_rejects(kurt, 3.0 * n / (n + 1), "sphere in R^(n-1)")
        if layer >= 2:
            assert_rejects(
                kurt, 3.0 * widths_product(ORTHO_WIDTHS, layer, 2.0), "Gaussian-weight kurtosis"
            )


@pytest.mark.parametrize("method,seed", [("projected", 33), ("dense", 34)])
def test_orthogonal_rectangular_scale(method, seed):
    """Entry variance C_W/n_{l-1} for Haar weights of any shape: for a linear network
    K^(l) = C_W^l X X^T / n0 (exact per network where n_l >= n_{l-1}, in expectation
    where the layer shrinks). Catches a wrong s = sqrt(C_W max(1, n_out/n_in))."""
    widths = (6, 10, 4, 12, 5)
    cw = [1.4, 0.8, 1.2, 2.0]
    x = np.array(
        [
            [0.5, -1.0, 0.3, 0.8, -0.2, 1.1],
            [1.0, 0.2, -0.7, 0.1, 0.9, -0.4],
            [0.5, -1.0, 0.3, 0.8, -0.2, 1.1],
        ]
    )  # repeated input
    net = nf.Network(widths, activation="linear", init="orthogonal", cw=cw)
    ens = nf.sample(net, x, 200_000, seed=seed, method=method)
    k = x @ x.T / widths[0]
    for layer in range(1, len(widths)):
        k = cw[layer - 1] * k
        est = ens.two_point(layer)
        assert_agrees(est, k, f"K^({layer})")
        # negative control, this layer's scale wrong: s = sqrt(C_W) on a growing layer
        # (no max(1, n_out/n_in)) or s = sqrt(C_W n_out/n_in) on a shrinking one.
        r = widths[layer] / widths[layer - 1]
        assert_rejects(est, k * min(r, 1.0 / r), "wrong Haar scale")


# ------------------------------------------------ tiny ensembles: unbiased estimators


def test_connected_estimators_unbiased_for_two_networks():
    """docs/estimators.md#u-statistics: products of means are U-statistics, so the connected
    estimators are unbiased for ANY number of networks, even N = 2. Each of the 64 accumulator
    blocks of a 128-network run is itself a 2-network ensemble; averaging the estimator over
    64 x 50 such ensembles must reproduce the exact connected functions. The naive
    estimator K_ab K_cd ~ (T_ab/N)(T_cd/N) is biased by -Cov(G_ab, G_cd)/N, i.e. by
    -Var(G)/2 = -K^2/n here, which this test rejects by many sigma."""
    widths = (3, 4, 6)
    net = nf.Network(widths, activation="linear", init="gaussian", cw=1.0)
    k1 = float(np.sum(X1**2)) / widths[0]
    same, distinct, naive = [], [], []
    for r in range(50):
        ens = nf.sample(net, X1, 128, seed=41, first_network=128 * r)
        acc = ens.accumulator
        assert np.all(acc.block_counts == 2)
        for layer in (1, 2):
            m = layer_estimates(
                acc.block_sums[:, layer - 1, :],
                acc.block_counts,
                acc.layout,
                widths[layer],
                widths[layer - 1],
            )
            same.append(m.same_connected[:, 0, 0, 0, 0])
            distinct.append(m.distinct_connected[:, 0, 0, 0, 0])
            kk_naive = (acc.block_sums[:, layer - 1, 0] / 2.0) ** 2
            naive.append(m.distinct_raw[:, 0, 0, 0, 0] - kk_naive)
    same = np.array(same).reshape(50, 2, 64).transpose(1, 0, 2).reshape(2, -1)
    distinct = np.array(distinct).reshape(50, 2, 64).transpose(1, 0, 2).reshape(2, -1)
    naive = np.array(naive).reshape(50, 2, 64).transpose(1, 0, 2).reshape(2, -1)
    # exact: layer 1 Gaussian -> 0; layer 2: C_distinct = (2/n1) K^2, C_same = 3x that
    exact_distinct = np.array([0.0, 2.0 / widths[1] * k1**2])
    exact_same = 3.0 * exact_distinct

    def z(samples, exact):
        return (samples.mean(axis=1) - exact) / (
            samples.std(axis=1, ddof=1) / math.sqrt(samples.shape[1])
        )

    assert np.max(np.abs(z(distinct, exact_distinct))) < Z_PASS
    assert np.max(np.abs(z(same, exact_same))) < Z_PASS
    # negative control: the biased product of means
    assert np.min(np.abs(z(naive, exact_distinct))) > Z_REJECT


# ------------------------------------- infinite-width kernels: exact at layers 1 and 2


def relu_kernel(k):
    """C_W-free arc-cosine kernel <relu(u) relu(v)> for (u, v) ~ N(0, k)."""
    d = np.sqrt(np.diag(k))
    norm = np.outer(d, d)
    cos = np.clip(k / norm, -1.0, 1.0)
    theta = np.arccos(cos)
    return norm / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * cos)


def erf_kernel(k):
    d = 1.0 + 2.0 * np.diag(k)
    return 2.0 / np.pi * np.arcsin(2.0 * k / np.sqrt(np.outer(d, d)))


KERNELS = {"relu": relu_kernel, "erf": erf_kernel}


@pytest.mark.parametrize("activation,cw,cb,seed", [("relu", 1.6, 0.3, 51), ("erf", 2.5, 0.2, 52)])
def test_infinite_width_kernel_layers_1_2(activation, cw, cb, seed):
    """z^(1) is exactly Gaussian with K^(1) = C_b + C_W X X^T/n0, so
    K^(2) = C_b + C_W <sigma sigma>_{K^(1)} holds exactly at any width (here 8)."""
    widths = (3, 8, 6, 5)
    net = nf.Network(widths, activation=activation, init="gaussian", cw=cw, cb=cb)
    ens = nf.sample(net, X3, 300_000, seed=seed, method="projected")
    k1 = cb + cw * X3 @ X3.T / widths[0]
    k2 = cb + cw * KERNELS[activation](k1)
    assert_agrees(ens.two_point(1), k1, "K^(1)")
    assert_agrees(ens.two_point(2), k2, "K^(2)")
    # negative controls: bias variance left out of layer 1 (as if the bias were added
    # after the activation); the kernel with a factor 2 too large (C_W/pi for relu).
    k2_nobias = cb + cw * KERNELS[activation](cw * X3 @ X3.T / widths[0])
    assert_rejects(ens.two_point(2), k2_nobias, "bias missing from layer 1")
    assert_rejects(
        ens.two_point(2), cb + 1.05 * cw * KERNELS[activation](k1), "5% kernel normalisation error"
    )
    if activation == "relu":
        # the diagonal of the ReLU recursion is exact at every depth and width:
        # K_aa^(l+1) = C_b + C_W K_aa^(l) / 2 (z^(l) is symmetric given layer l-1).
        kd = np.diag(k1)
        for layer in range(2, len(widths)):
            kd = cb + cw * kd / 2
            est = ens.estimate(layer, lambda m: np.diagonal(m.two_point, axis1=-2, axis2=-1))
            assert_agrees(est, kd, f"diag K^({layer})")


# ------------------------------------ one hidden layer: Halverson-Maiti-Stoner exact C


def gaussian_h_covariance(k1, act, seed, n_chunks=16, chunk=2**18):
    """Monte Carlo Cov(h_a h_b, h_c h_d), h = act(u), u ~ N(0, k1): (value, error)."""
    rng = np.random.default_rng(seed)
    nb = k1.shape[0]
    chol = np.linalg.cholesky(k1)
    covs = np.empty((n_chunks, nb, nb, nb, nb))
    for c in range(n_chunks):
        h = act(rng.standard_normal((chunk, nb)) @ chol.T)
        hh = (h[:, :, None] * h[:, None, :]).reshape(chunk, nb * nb)
        covs[c] = np.cov(hh, rowvar=False).reshape(nb, nb, nb, nb)
    return covs.mean(axis=0), covs.std(axis=0, ddof=1) / math.sqrt(n_chunks)


HMS_CASES = {
    # activation: (cw, cb, seed, numpy activation or None for the closed form)
    "linear": (1.2, 0.25, 61, None),
    "relu": (2.0, 0.1, 62, lambda u: np.maximum(u, 0.0)),
    "erf": (1.8, 0.3, 63, erf),
}


@pytest.mark.parametrize(
    "activation,method",
    [
        ("linear", "projected"),
        ("linear", "dense"),
        ("relu", "projected"),
        ("relu", "dense"),
        ("erf", "projected"),
    ],
)
def test_one_hidden_layer_four_point(activation, method):
    """Layer 2 of (n0, n1, n2) with Gaussian weights, given h = sigma(z^(1)) the rows of
    z^(2) are iid Gaussian with covariance C_b + C_W G_h, G_h = (1/n1) sum_j h_j h_j^T,
    and z^(1) is exactly Gaussian with K^(1). Therefore, exactly,
        C_distinct_abcd = (C_W^2/n1) Cov(h_a h_b, h_c h_d)
        C_same_abcd     = (C_W^2/n1) [Cov(ab,cd) + Cov(ac,bd) + Cov(ad,bc)]
                        = (C_W^2/n1) [3E(hhhh) - E(ab)E(cd) - E(ac)E(bd) - E(ad)E(bc)]
    (Halverson-Maiti-Stoner). Linear: Cov(ab,cd) = K_ac K_bd + K_ad K_bc; relu and erf:
    Monte Carlo over 4M Gaussian samples, with its error added in quadrature."""
    cw, cb, seed, act = HMS_CASES[activation]
    widths = (3, 6, 5)
    n1 = widths[1]
    net = nf.Network(widths, activation=activation, init="gaussian", cw=cw, cb=cb)
    ens = nf.sample(net, X3, 400_000, seed=seed + (method == "dense"), method=method)
    k1 = cb + cw * X3 @ X3.T / widths[0]
    if act is None:
        cov = np.einsum("ac,bd->abcd", k1, k1) + np.einsum("ad,bc->abcd", k1, k1)
        cov_err = np.zeros_like(cov)
    else:
        cov, cov_err = gaussian_h_covariance(k1, act, seed=1000 + seed)
    scale = cw**2 / n1
    distinct = scale * cov
    distinct_err = scale * cov_err
    same = scale * (cov + np.einsum("acbd->abcd", cov) + np.einsum("adbc->abcd", cov))
    same_err = scale * (
        cov_err + np.einsum("acbd->abcd", cov_err) + np.einsum("adbc->abcd", cov_err)
    )  # conservative
    est_d = ens.four_point(2, neurons="distinct")
    est_s = ens.four_point(2, neurons="same")
    # the theory error must be a small part of the budget for the test to be sharp
    assert np.max(distinct_err / est_d.error) < 0.5
    assert_agrees(est_d, distinct, "C_distinct^(2)", extra_error=distinct_err)
    assert_agrees(est_s, same, "C_same^(2)", extra_error=same_err)
    # negative controls: 1/(n1-1) instead of 1/n1; only the (ab)(cd) pairing in the
    # same-neuron function; the same-neuron formula used for distinct neurons.
    assert_rejects(est_d, distinct * n1 / (n1 - 1), "1/(n1-1)", distinct_err)
    assert_rejects(est_s, same * n1 / (n1 - 1), "1/(n1-1), same", same_err)
    assert_rejects(est_s, 3 * distinct, "3 x distinct pairing only", 3 * distinct_err)
    assert_rejects(est_d, same, "same-neuron formula for distinct neurons", same_err)
