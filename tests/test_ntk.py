"""The neural tangent kernel: per-network values, its mean and its O(1/n) fluctuations.

Conventions (docs/conventions.md#ntk, Roberts-Yaida): with learning rates (lambda_b, lambda_W),
    H^(l)_{i1 i2; a1 a2} = sum_{l' <= l} [lambda_b sum_j dz_{i1;a1}/db_j dz_{i2;a2}/db_j
                   + (lambda_W / n_{l'-1}) sum_jk dz_{i1;a1}/dW_jk dz_{i2;a2}/dW_jk]
(b = b^(l'), W = W^(l')),
Theta = E[H_ii] and, with n = n_{l-1},
    E[dH_{i1i2} dH_{i3i4}] = (1/n)[d12 d34 A_(12)(34) + d13 d24 B_1324 + d14 d23 B_1423],
    E[dH_{i1i2} z_i3 z_i4] = (1/n)[d12 d34 D_1234   + d13 d24 F_1324 + d14 d23 F_1423].

What is tested, from the bottom up:
  a. the NumPy reference NTK (explicit backpropagation) against central finite
     differences of the definition, parameter by parameter;
  b. ``nf.ntk_samples(method="dense")`` against the reference, network by network
     (same weights: the same random streams), several inits, rectangular widths, biases,
     lambda_b != lambda_W;
  c. the ensemble estimators (``ens.ntk``, ``ens.ntk_fluctuations``) against the reference
     estimators evaluated on the same networks' samples (unbiased U-statistics, jackknife);
  d. exact finite-width means (deep ReLU at criticality, deep linear);
  e. the infinite-width mean (``nf.theory.ntk_recursion``) at large width;
  f. exact finite-width layer-2 fluctuations A, B, D, F (Gaussian weights, any
     activation), with negative controls (B/F index placement, fan-in normalisation),
     D^(1) = 0 to rounding, and D's error against the former D estimator's;
  g. depth growth of A / Theta^2 for Gaussian ReLU at criticality;
  h. dense and projected samplers agree on Theta, A, B, D, F at every layer;
  i. bad input raises clear errors.
Agreement is judged by z-scores from the package's own error bars with fixed seeds
(``Z_PASS``); negative controls must be rejected by more than ``Z_REJECT``.
"""

import math
import os

import numpy as np
import pytest

import nnft_fast as nf

from . import reference as ref
from . import _zscores as zs_mod
from ._examples import load_example
from ._zscores import Z_PASS, Z_REJECT, assert_agrees, assert_methods_agree, assert_rejects

FLUCTUATIONS = ("A", "B", "D", "F")

X1 = np.array([[0.9, -0.6, 1.3]])  # one input, n0 = 3
X2 = np.array(
    [
        [0.8, -0.5, 1.1],  # two inputs, n0 = 3
        [-0.3, 0.9, 0.4],
    ]
)
X3 = np.array(
    [
        [0.9, -0.6, 1.3],  # three inputs, n0 = 3
        [-0.4, 1.1, 0.5],
        [1.2, 0.3, -0.8],
    ]
)


# ----------------------------------------------------------------------------- helpers


def fluctuations(ens, layer):
    fl = ens.ntk_fluctuations(layer)
    return {name: getattr(fl, name) for name in FLUCTUATIONS}


def ntk_observables(ens, layer):
    """(label, Estimate) of every NTK statistic of one layer."""
    out = [("Theta", ens.ntk(layer)), ("Theta_offdiag", ens.ntk(layer, neurons="distinct"))]
    out += sorted(fluctuations(ens, layer).items())
    return out


def reference_activation(name):
    return ref.ACTIVATIONS[name], ref.ACTIVATION_DERIVATIVES[name]


def d_reference(h, z, fan_in):
    """(D, jackknife error) of the package's D estimator from its definition
    (nnft_fast/ntk.py): per network, over the r (n_l - 1) pairs (i < r, j != i) of a
    readout and any other neuron of the layer, PD = mean H_ii;ab z_j;c z_j;d and
    G = mean z_j;c z_j;d; then D = n (mean PD - U(T, G)) as ``ref.ntk_estimates``.
    h (N, r, r, B, B), z (N, n_l, B); network e in block e % 64."""
    r, n_l = h.shape[1], z.shape[1]
    pairs = 1.0 - np.eye(r, n_l)  # [i, j]: j != i
    zz = np.einsum("eja,ejb->ejab", z, z)
    stats = ref.ntk_per_network_statistics(h, z)
    stats["PD"] = np.einsum("eiiab,ij,ejcd->eabcd", h, pairs, zz) / (r * (n_l - 1.0))
    stats["G"] = np.einsum("ij,ejcd->ecd", pairs, zz) / (r * (n_l - 1.0))
    return ref.block_jackknife(
        lambda keep: ref.ntk_estimates_from_statistics(
            {k: v[keep] for k, v in stats.items()}, fan_in
        )["D"],
        h.shape[0],
    )


def gauss_hermite_2d(k, n_nodes=80):
    """Nodes z (2, q, q) and weights (q, q) for E[g(z_0, z_1)], z ~ N(0, k), k (2, 2) > 0."""
    xi, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    w = w / math.sqrt(2.0 * math.pi)
    chol = np.linalg.cholesky(k)
    grid = np.stack(np.meshgrid(xi, xi, indexing="ij"))
    return np.einsum("ak,kpq->apq", chol, grid), np.outer(w, w)


def layer2_exact(act, dact, x, cw, cb, lambda_b, lambda_w):
    """Exact finite-width NTK statistics of layer 2 for Gaussian weights, two inputs.

    Layer 1 is exactly Gaussian, z^(1) ~ N(0, K1) iid over neurons with
    K1 = C_b1 + C_W1 x.x/n0, and H^(1)_{ij} = delta_ij Theta1, Theta1 = lambda_b +
    lambda_W x.x/n0, is deterministic. Given layer 1, with W2 = sqrt(C_W/n1) g,
        H^(2)_{i1 i2} = delta_{i1i2} (lambda_b + (lambda_W/n1) sum_k s_k s_k)
                        + (C_W/n1) sum_k g_{i1 k} g_{i2 k} Theta1 s'_k s'_k,
    (s = sigma(z^(1)), s' = sigma'(z^(1)), C_W = C_W^(2)). Averaging over g and over the iid
    layer-1 neurons gives, exactly at any n1 (fan-in n = n1), with
    f_ab = lambda_W s_a s_b + C_W Theta1_ab s'_a s'_b:
        Theta   = lambda_b + E f,                K2 = C_b2 + C_W E[s s]
        A_abcd  = Cov[f_ab, f_cd]
        D_abcd  = C_W Cov[f_ab, s_c s_d]
        B_acbd  = C_W^2 Theta1_ab Theta1_cd E[s'_a s'_b s'_c s'_d]
        F_acbd  = C_W^2 Theta1_ab E[s'_a s'_b s_c s_d]
    (B and F are stored with the Roberts-Yaida index placement B[a1,a3,a2,a4]).
    """
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    n0 = x.shape[1]
    k1 = cb[0] + cw[0] * x @ x.T / n0
    th1 = lambda_b + lambda_w * x @ x.T / n0
    c = cw[1]
    z, weights = gauss_hermite_2d(k1)

    def mean(arr):
        return np.einsum("...pq,pq->...", arr, weights)

    s, d = act(z), dact(z)
    ss = s[:, None] * s[None, :]
    dd = d[:, None] * d[None, :]
    f = lambda_w * ss + c * th1[:, :, None, None] * dd
    ef, ess = mean(f), mean(ss)
    outer = "ab,cd->abcd"
    a = mean(f[:, :, None, None] * f[None, None]) - np.einsum(outer, ef, ef)
    dfl = c * (mean(f[:, :, None, None] * ss[None, None]) - np.einsum(outer, ef, ess))
    bx = c**2 * np.einsum(outer, th1, th1) * mean(dd[:, :, None, None] * dd[None, None])
    fx = c**2 * th1[:, :, None, None] * mean(dd[:, :, None, None] * ss[None, None])
    return {
        "Theta1": th1,
        "K1": k1,
        "Theta": lambda_b + ef,
        "K": cb[1] + c * ess,
        "A": a,
        "D": dfl,
        "B": bx.transpose(0, 2, 1, 3),
        "F": fx.transpose(0, 2, 1, 3),
    }


# ------------------------------------------------ a. the reference against its definition


@pytest.mark.parametrize("init", ref.INITS)
def test_reference_ntk_matches_finite_differences(init):
    """Backpropagated NTK == central differences over every parameter (biases included
    on a layer with C_b = 0), for r = 3 readouts, two inputs, lambda_b != lambda_W."""
    widths = (3, 4, 5, 3)
    act, dact = reference_activation("tanh")
    cw, cb = [1.5, 1.2, 1.8], [0.2, 0.0, 0.3]
    for network in (0, 3):
        bp = ref.dense_ntk(widths, act, dact, init, cw, cb, X2, 7, network, 0.6, 1.4, 3)
        fd = ref.finite_difference_ntk(widths, act, init, cw, cb, X2, 7, network, 0.6, 1.4, 3)
        for layer, (a, b) in enumerate(zip(bp, fd), start=1):
            assert a.shape == (3, 3, 2, 2)
            np.testing.assert_allclose(
                a,
                b,
                rtol=0,
                atol=1e-8 * np.max(np.abs(a)),
                err_msg=f"{init} network {network} layer {layer}",
            )
        # symmetry H_{i1 i2; a1 a2} = H_{i2 i1; a2 a1}
        for h in bp:
            np.testing.assert_allclose(h, h.transpose(1, 0, 3, 2), rtol=1e-13, atol=1e-14)
    # the comparison has power: a 10% error in lambda_W is far outside the tolerance
    wrong = ref.finite_difference_ntk(widths, act, init, cw, cb, X2, 7, 3, 0.6, 1.54, 3)
    assert np.max(np.abs(wrong[-1] - bp[-1])) > 1e-3 * np.max(np.abs(bp[-1]))


# ------------------------------------------------ b. per-network values vs the reference

DENSE_CASES = {
    # name: (init, widths, activation, cw, cb, lambda_b, lambda_w, readouts, inputs)
    "gaussian-tanh": (
        "gaussian",
        (3, 7, 5, 9),
        "tanh",
        [1.5, 1.2, 1.8],
        [0.2, 0.0, 0.3],
        0.6,
        1.4,
        3,
        X3,
    ),
    "orthogonal-relu-grow-shrink": (
        "orthogonal",
        (3, 2, 8, 4, 6),
        "relu",
        [1.9, 2.0, 1.7, 2.2],
        [0.1, 0.05, 0.0, 0.2],
        0.0,
        2.0,
        2,
        X3,
    ),
    "uniform-erf": ("uniform", (3, 6, 6, 4), "erf", 1.3, 0.15, 1.7, 0.4, 4, X2),
    "gaussian-linear": ("gaussian", (3, 5, 4), "linear", 1.1, 0.0, 0.8, 1.2, 2, X1),
}


def make_net(init, widths, act, cw, cb):
    return nf.Network(widths, activation=act, init=init, cw=cw, cb=cb)


@pytest.mark.parametrize("name", sorted(DENSE_CASES))
def test_ntk_samples_dense_match_reference(name):
    init, widths, act, cw, cb, lb, lw, r, x = DENSE_CASES[name]
    net = make_net(init, widths, act, cw, cb)
    sig, dsig = reference_activation(act)
    seed, first, count = 17, 5, 3
    zs = nf.ntk_samples(
        net,
        x,
        count,
        seed=seed,
        method="dense",
        lambda_b=lb,
        lambda_w=lw,
        readouts=r,
        first_network=first,
    )
    assert isinstance(zs, list) and len(zs) == len(widths) - 1
    for layer, h in enumerate(zs, start=1):
        assert h.shape == (count, r, r, x.shape[0], x.shape[0]), (layer, h.shape)
        assert h.dtype == np.float64
    for t in range(count):
        expected = ref.dense_ntk(widths, sig, dsig, init, cw, cb, x, seed, first + t, lb, lw, r)
        for layer, (got, exp) in enumerate(zip(zs, expected), start=1):
            np.testing.assert_allclose(
                got[t],
                exp,
                rtol=0,
                atol=1e-9 * np.max(np.abs(exp)),
                err_msg=f"{name}: network {first + t}, layer {layer}",
            )
    # the same networks whatever the batch: networks 5..7 of a run starting at 0
    whole = nf.ntk_samples(
        net, x, first + count, seed=seed, method="dense", lambda_b=lb, lambda_w=lw, readouts=r
    )
    for a, b in zip(whole, zs):
        np.testing.assert_allclose(a[first:], b, rtol=1e-12, atol=1e-14)
    # linear in the learning rates: H(lb, lw) = lb H(1, 0) + lw H(0, 1)
    hb = nf.ntk_samples(
        net,
        x,
        count,
        seed=seed,
        method="dense",
        lambda_b=1.0,
        lambda_w=0.0,
        readouts=r,
        first_network=first,
    )
    hw = nf.ntk_samples(
        net,
        x,
        count,
        seed=seed,
        method="dense",
        lambda_b=0.0,
        lambda_w=1.0,
        readouts=r,
        first_network=first,
    )
    for a, b, c in zip(zs, hb, hw):
        np.testing.assert_allclose(a, lb * b + lw * c, rtol=1e-10, atol=1e-12 * np.max(np.abs(a)))


def test_projected_ntk_samples_layer1_and_consistency():
    """Projected samples: layer 1 is deterministic, H^(1)_{ij} = delta_ij Theta1
    (Theta1 = lambda_b + lambda_W x.x/n0), and H is symmetric and positive semi-definite
    as a matrix over (i, a)."""
    net = make_net("gaussian", (3, 6, 5, 7), "tanh", 1.4, 0.2)
    lb, lw, r = 0.6, 1.3, 3
    zs = nf.ntk_samples(
        net, X3, 20, seed=3, method="projected", lambda_b=lb, lambda_w=lw, readouts=r
    )
    theta1 = lb + lw * X3 @ X3.T / 3
    expected = np.einsum("ij,ab->ijab", np.eye(r), theta1)
    np.testing.assert_allclose(
        zs[0], np.broadcast_to(expected, zs[0].shape), rtol=1e-12, atol=1e-14
    )
    for h in zs:
        np.testing.assert_allclose(h, h.transpose(0, 2, 1, 4, 3), rtol=1e-12, atol=1e-13)
        mat = h.transpose(0, 1, 3, 2, 4).reshape(h.shape[0], r * 3, r * 3)
        assert np.min(np.linalg.eigvalsh(mat)) > -1e-10 * np.max(np.abs(mat))


# ------------------------------------------ c. ensemble estimators vs reference estimators

ESTIMATOR_CASES = {
    # name: (method, init, widths, activation, cw, cb, lambda_b, lambda_w, readouts, inputs)
    "dense-gaussian-tanh": (
        "dense",
        "gaussian",
        (3, 7, 5, 9),
        "tanh",
        [1.5, 1.2, 1.8],
        0.2,
        0.6,
        1.4,
        3,
        X3,
    ),
    "dense-orthogonal-relu": (
        "dense",
        "orthogonal",
        (3, 8, 4, 6),
        "relu",
        2.0,
        0.1,
        0.3,
        1.0,
        4,
        X2,
    ),
    "projected-gaussian-erf": (
        "projected",
        "gaussian",
        (3, 6, 9, 5),
        "erf",
        1.6,
        0.1,
        1.0,
        1.0,
        2,
        X3,
    ),
}


@pytest.mark.parametrize("name", sorted(ESTIMATOR_CASES))
def test_ensemble_estimators_match_reference(name):
    """ens.ntk / ens.ntk_fluctuations == the reference estimators (U-statistics for the
    Theta Theta and Theta K products, fan-in n_{l-1}, B and F index placement; D from the
    readout-and-any-other-neuron pairs, ``d_reference``) evaluated on ``nf.ntk_samples`` +
    ``nf.preactivations`` of the same networks; errors are the same delete-one-block
    jackknife (network e in block e % 64)."""
    method, init, widths, act, cw, cb, lb, lw, r, x = ESTIMATOR_CASES[name]
    net = make_net(init, widths, act, cw, cb)
    seed, n_net = 23, 300
    ens = nf.sample(
        net,
        x,
        n_net,
        seed=seed,
        method=method,
        observables=("two_point", "four_point", "ntk"),
        lambda_b=lb,
        lambda_w=lw,
        ntk_readouts=r,
    )
    hs = nf.ntk_samples(
        net, x, n_net, seed=seed, method=method, lambda_b=lb, lambda_w=lw, readouts=r
    )
    zs = nf.preactivations(net, x, n_net, seed=seed, method=method)
    for layer in range(1, len(widths)):
        z = zs[layer - 1].astype(np.float64)
        est = ref.ntk_estimates(hs[layer - 1], z, widths[layer - 1])
        est["D"] = d_reference(hs[layer - 1], z, widths[layer - 1])
        got = dict(ntk_observables(ens, layer))
        got["K"] = ens.two_point(layer)
        pairs = [("Theta", "theta"), ("Theta_offdiag", "theta_offdiag"), ("K", "K")]
        pairs += [(f, f) for f in FLUCTUATIONS]
        # natural scales (entries that vanish identically, e.g. A^(1), are rounding)
        theta_scale = np.max(np.abs(est["theta"][0]))
        k_scale = np.max(np.abs(est["K"][0]))
        fl_scale = widths[layer - 1] * theta_scale * max(theta_scale, k_scale)
        for label, key in pairs:
            value, error = est[key]
            g = got[label]
            assert g.value.shape == value.shape, (label, g.value.shape, value.shape)
            scale = {"Theta": theta_scale, "Theta_offdiag": theta_scale, "K": k_scale}.get(
                label, fl_scale
            )
            np.testing.assert_allclose(
                g.value,
                value,
                rtol=0,
                atol=1e-8 * scale,
                err_msg=f"{name} layer {layer} {label} value",
            )
            np.testing.assert_allclose(
                g.error,
                error,
                rtol=1e-5,
                atol=1e-8 * max(scale, np.max(error)),
                err_msg=f"{name} layer {layer} {label} error",
            )
        if layer >= 2:
            # the tolerance has power: the biased product mean(T) (x) mean(T) in place of
            # the U-statistic shifts A by -n Cov(T, T)/(N - 1), far beyond it
            t = np.einsum("eiiab->eab", hs[layer - 1]) / r
            tbar = t.mean(axis=0)
            cov = np.einsum("eab,ecd->abcd", t, t) / n_net - np.einsum("ab,cd->abcd", tbar, tbar)
            biased = est["A"][0] - widths[layer - 1] * cov / (n_net - 1.0)
            assert np.max(np.abs(biased - got["A"].value)) > 1e-6 * fl_scale


def test_ntk_merge_equals_one_pass():
    """Accumulators stay mergeable: networks 0..299 merged with 300..499 == one run."""
    net = make_net("gaussian", (3, 6, 5, 7), "tanh", 1.4, 0.1)
    kw = dict(
        observables=("two_point", "ntk"), lambda_b=0.6, lambda_w=1.3, ntk_readouts=3, method="dense"
    )
    whole = nf.sample(net, X2, 500, seed=4, **kw)
    merged = nf.sample(net, X2, 300, seed=4, **kw).merge(
        nf.sample(net, X2, 200, seed=4, first_network=300, **kw)
    )
    for layer in range(1, 4):
        for (label, a), (_, b) in zip(
            ntk_observables(whole, layer), ntk_observables(merged, layer)
        ):
            scale = np.max(np.abs(whole.ntk(layer).value)) ** 2 * 6
            np.testing.assert_allclose(
                b.value, a.value, rtol=0, atol=1e-12 * scale, err_msg=f"layer {layer} {label}"
            )
            np.testing.assert_allclose(
                b.error, a.error, rtol=0, atol=1e-12 * scale, err_msg=f"layer {layer} {label} error"
            )


# ----------------------------------------------------------------- d. exact finite-width means

RELU_WIDTHS = (3, 16, 12, 20, 16, 16)


@pytest.mark.parametrize("method,seed,n_net", [("projected", 41, 20_000), ("dense", 42, 10_000)])
def test_relu_critical_mean_exact(method, seed, n_net):
    """Gaussian ReLU at criticality (C_W = 2, C_b = 0), lambda_b = 0, one input:
    Theta^(l) = l lambda_W K / 2 with K = C_W |x|^2 / n0, exactly at any width.
    (E over W^(l+1): Theta^(l+1) = lambda_W E[s^2] + (C_W/n) sum_j E[1{z_j>0} H_jj]; the
    law of (z_j, H_jj) is invariant under flipping row j of W^(l), so both halve.)"""
    lw = 1.3
    net = make_net("gaussian", RELU_WIDTHS, "relu", 2.0, 0.0)
    ens = nf.sample(
        net,
        X1,
        n_net,
        seed=seed,
        method=method,
        observables=("two_point", "ntk"),
        lambda_b=0.0,
        lambda_w=lw,
    )
    k = 2.0 * float(np.sum(X1**2)) / 3
    for layer in range(1, len(RELU_WIDTHS)):
        est = ens.ntk(layer)
        assert_agrees(est, layer * lw * k / 2, f"{method} Theta^({layer})")
        assert_rejects(est, (layer + 1) * lw * k / 2, f"{method}: one layer too many")
        assert_rejects(est, layer * lw * k, f"{method}: missing ReLU 1/2")
        if layer >= 2:
            # fan-in normalisation of the first layer by n_1 instead of n_0
            wrong = (layer - 1) * lw * k / 2 + lw * float(np.sum(X1**2)) / RELU_WIDTHS[1]
            assert_rejects(est, wrong, f"{method}: lambda_W/n_l' instead of n_(l'-1)")


LIN_WIDTHS = (3, 8, 12, 6, 10)
LIN_CW = 1.2


@pytest.mark.parametrize(
    "method,seed,cb",
    [("projected", 51, 0.0), ("projected", 52, 0.25), ("dense", 53, 0.0), ("dense", 54, 0.25)],
)
def test_linear_mean_exact(method, seed, cb):
    """Deep linear Gaussian, two inputs: K^(l) = C_b + C_W K^(l-1) (K^(0) = x.x/n0) and
    Theta^(l) = sum_{l'=1..l} (lambda_b + lambda_W K^(l'-1)) C_W^(l-l'), exactly (E over
    W^(l+1) of H^(l+1) = lambda_b + lambda_W G^(l) + W H^(l) W^T). lambda_b != 0 also where
    C_b = 0: the bias derivatives count whatever the bias variance."""
    lb, lw = 0.5, 1.3
    net = make_net("gaussian", LIN_WIDTHS, "linear", LIN_CW, cb)
    ens = nf.sample(
        net,
        X2,
        20_000,
        seed=seed,
        method=method,
        observables=("two_point", "ntk"),
        lambda_b=lb,
        lambda_w=lw,
    )
    kernels = [X2 @ X2.T / 3]
    for _ in range(1, len(LIN_WIDTHS)):
        kernels.append(cb + LIN_CW * kernels[-1])
    for layer in range(1, len(LIN_WIDTHS)):
        theta = sum(
            (lb + lw * kernels[lp - 1]) * LIN_CW ** (layer - lp) for lp in range(1, layer + 1)
        )
        est = ens.ntk(layer)
        assert_agrees(est, theta, f"{method} cb={cb} Theta^({layer})")
        assert_agrees(ens.two_point(layer), kernels[layer], f"K^({layer})")
        if layer >= 2:
            no_bias_terms = sum(
                lw * kernels[lp - 1] * LIN_CW ** (layer - lp) for lp in range(1, layer + 1)
            )
            assert_rejects(est, no_bias_terms, "lambda_b terms missing")
            assert_rejects(est, theta - (lb + lw * kernels[layer - 1]), "last layer missing")
            assert_rejects(est, theta * LIN_CW, "one C_W too many")
        assert_agrees(ens.ntk(layer, neurons="distinct"), 0.0, "E[H_ij], i != j")


# ----------------------------------------------------------- e. infinite-width mean (theory)

# tanh, three inputs, this exact network family. Theta^(2) is exact at any width for
# Gaussian weights (layer 1 is Gaussian); the 1/n correction first shows at layer 3. It was
# measured in a development run (projected, 4e5 networks, statistical error 3e-4 relative):
# max_entries |Theta^(3)(n) - Theta_inf| / |Theta_inf| = 0.0051, 0.0025, 0.0012 at
# n = 16, 32, 64, i.e. a clean 0.08/n. NTK_TANH_BIAS_16 bounds it at n = 16 with a factor
# 2 margin; 16/n times it (doubled again for the O(1/n^2) remainder) is added to the error
# in quadrature: 3e-4 relative at n = 1024, about the statistical error of the test.
NTK_TANH_BIAS_16 = 0.01
THEORY_WIDTH = 1024


def test_mean_matches_infinite_width_theory():
    from nnft_fast.theory import ntk_recursion

    lb, lw = 0.7, 1.2
    widths = (3, THEORY_WIDTH, THEORY_WIDTH, THEORY_WIDTH)
    net = make_net("gaussian", widths, "tanh", 1.5, 0.1)
    ens = nf.sample(
        net,
        X3,
        400,
        seed=61,
        method="projected",
        observables=("two_point", "ntk"),
        lambda_b=lb,
        lambda_w=lw,
        ntk_readouts=8,
    )
    theory = ntk_recursion(net, X3, lambda_b=lb, lambda_w=lw)
    bias_bound = 2.0 * NTK_TANH_BIAS_16 * 16.0 / THEORY_WIDTH
    for layer in range(1, len(widths)):
        est = ens.ntk(layer)
        assert_agrees(
            est,
            theory[layer - 1],
            f"Theta^({layer}) vs infinite width",
            extra_error=bias_bound * np.abs(theory[layer - 1]),
        )
        if layer >= 2:
            # wrong recursions: learning rates swapped; a 1% normalisation error
            wrong = ntk_recursion(net, X3, lambda_b=lw, lambda_w=lb)[layer - 1]
            assert_rejects(
                est,
                wrong,
                "lambda_b and lambda_W swapped",
                extra_error=bias_bound * np.abs(theory[layer - 1]),
            )
            assert_rejects(
                est,
                1.01 * theory[layer - 1],
                "1% normalisation error",
                extra_error=bias_bound * np.abs(theory[layer - 1]),
            )


# --------------------------------------------------- f. exact layer-2 fluctuations A B D F

L2_WIDTHS = (3, 6, 5)
L2_CW = [1.4, 1.7]
L2_CB = [0.2, 0.1]
L2_LB, L2_LW = 0.6, 1.3
L2_N = 200_000


@pytest.fixture(
    scope="module",
    params=[
        ("tanh", "dense", 71),
        ("tanh", "projected", 72),
        ("erf", "dense", 73),
        ("erf", "projected", 74),
    ],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def layer2_ensemble(request):
    act, method, seed = request.param
    net = make_net("gaussian", L2_WIDTHS, act, L2_CW, L2_CB)
    ens = nf.sample(
        net,
        X2,
        L2_N,
        seed=seed,
        method=method,
        observables=("two_point", "ntk"),
        lambda_b=L2_LB,
        lambda_w=L2_LW,
        ntk_readouts=3,
    )
    return act, method, ens


def test_layer2_fluctuations_exact(layer2_ensemble):
    act, method, ens = layer2_ensemble
    sig, dsig = reference_activation(act)
    exact = layer2_exact(sig, dsig, X2, L2_CW, L2_CB, L2_LB, L2_LW)
    what = f"{act}/{method}"
    # layer 1: H deterministic, Theta1 exact, no fluctuations
    th1 = ens.ntk(1)
    np.testing.assert_allclose(th1.value, exact["Theta1"], rtol=1e-12)
    assert np.all(th1.error <= 1e-12 * np.max(np.abs(exact["Theta1"])))
    fl1 = fluctuations(ens, 1)
    scale1 = np.max(np.abs(exact["Theta1"])) ** 2 * L2_WIDTHS[0]
    for name in FLUCTUATIONS:  # D^(1) too: H_ii = Theta1 makes D* = Theta1 (x) G exactly
        assert np.max(np.abs(fl1[name].value)) < 1e-9 * scale1, (name, fl1[name])
        assert np.max(fl1[name].error) < 1e-9 * scale1, (name, fl1[name])
    # layer 2: exact finite-width values
    assert_agrees(ens.two_point(2), exact["K"], f"{what}: K^(2)")
    assert_agrees(ens.ntk(2), exact["Theta"], f"{what}: Theta^(2)")
    assert_agrees(ens.ntk(2, neurons="distinct"), 0.0, f"{what}: Theta_offdiag^(2)")
    fl2 = fluctuations(ens, 2)
    for name in FLUCTUATIONS:
        assert_agrees(fl2[name], exact[name], f"{what}: {name}^(2)")
    # negative controls: B/F index placement swapped (a1 a2 a3 a4 order), fan-in n_l
    # instead of n_{l-1} (a factor n_2/n_1 = 5/6), and A with the biased Theta Theta
    # product replaced by zero fluctuations (infinite width).
    assert_rejects(fl2["B"], exact["B"].transpose(0, 2, 1, 3), f"{what}: B index placement")
    assert_rejects(fl2["F"], exact["F"].transpose(0, 2, 1, 3), f"{what}: F index placement")
    ratio = L2_WIDTHS[2] / L2_WIDTHS[1]
    assert_rejects(fl2["B"], ratio * exact["B"], f"{what}: B fan-in n_l")
    assert_rejects(fl2["F"], ratio * exact["F"], f"{what}: F fan-in n_l")
    assert_rejects(fl2["A"], 0.0 * exact["A"], f"{what}: A = 0")
    assert_rejects(fl2["D"], 0.0 * exact["D"], f"{what}: D = 0")


GAIN_WIDTHS = (3, 48, 48, 48)


def test_d_estimator_gain():
    """D pairs each readout's H_ii with z_j z_j^T of every other neuron and subtracts the
    cross-network product with G over the same pairs (nnft_fast/ntk.py): the O(1) noise of
    z_j z_j^T cancels. Against the former estimator (D* over readout pairs only, G over
    all neurons: ``ref.ntk_estimates``) on the same 2000 networks (tanh, projected, r = 2,
    seed 6): the jackknife error of D^(1) (= 0 exactly) drops from 0.11 to rounding
    (4.6e-15), of D^(2) from 1.36 to 0.032 (42x), of D^(3) from 1.91 to 0.070 (27x); both
    agree with each other and D^(2) with its exact finite-width value (``layer2_exact``)."""
    cw, cb, lb, lw, r, n_net = 1.5, 0.1, 0.7, 1.2, 2, 2000
    net = make_net("gaussian", GAIN_WIDTHS, "tanh", cw, cb)
    kw = dict(seed=6, method="projected")
    ens = nf.sample(
        net,
        X2,
        n_net,
        observables=("two_point", "ntk"),
        lambda_b=lb,
        lambda_w=lw,
        ntk_readouts=r,
        **kw,
    )
    hs = nf.ntk_samples(net, X2, n_net, lambda_b=lb, lambda_w=lw, readouts=r, **kw)
    zs = nf.preactivations(net, X2, n_net, **kw)
    exact = layer2_exact(*reference_activation("tanh"), X2, [cw] * 2, [cb] * 2, lb, lw)
    for layer in range(1, len(GAIN_WIDTHS)):
        z = zs[layer - 1].astype(np.float64)
        old_value, old_error = ref.ntk_estimates(hs[layer - 1], z, GAIN_WIDTHS[layer - 1])["D"]
        new = ens.ntk_fluctuations(layer).D
        what = f"D^({layer})"
        assert np.max(np.abs(new.value - old_value) / old_error) < Z_PASS, what
        if layer == 1:
            scale = GAIN_WIDTHS[0] * np.max(np.abs(exact["Theta1"] * exact["K1"]))
            assert np.max(np.abs(new.value)) < 1e-12 * scale, (what, new)
            assert np.max(new.error) < 1e-12 * scale < 1e-6 * np.min(old_error), (what, new)
            continue
        gain = np.min(old_error / new.error)  # entry by entry
        assert gain > 10.0, (what, gain)
        if layer == 2:
            assert_agrees(new, exact["D"], what)
            assert_rejects(new, 0.0 * exact["D"], f"{what} = 0")


# ------------------------------------------------------- g. depth growth of the fluctuations


@pytest.mark.parametrize("method,seed", [("projected", 81), ("dense", 82)])
def test_relu_fluctuations_grow_with_depth(method, seed):
    """Gaussian ReLU at criticality (C_W = 2, C_b = 0, lambda_b = 0, lambda_W = 1), one
    input. Layer 2 is exact at any width (``layer2_exact`` in closed form: with
    K = 2|x|^2/n0, Theta1 = K/2 and f = z^2 1{z>0} + K 1{z>0}, z ~ N(0, K)):
        Theta^(2) = K, A = Var f = 2K^2, B = 4 Theta1^2 E[1{z>0}] = K^2/2,
        D = 2 Cov[f, relu(z)^2] = 3K^2, F = 4 Theta1 E[relu(z)^2] = K^2.
    Deeper, A / Theta^2 grows with depth (Roberts-Yaida), the effect Day-Kahn-Roberts ask
    about for orthogonal weights: at layer 6 it must be far above its layer-2 value 2."""
    widths = (3,) + (16,) * 6
    net = make_net("gaussian", widths, "relu", 2.0, 0.0)
    ens = nf.sample(
        net,
        X1,
        20_000,
        seed=seed,
        method=method,
        observables=("two_point", "ntk"),
        lambda_b=0.0,
        lambda_w=1.0,
    )
    k = 2.0 * float(np.sum(X1**2)) / 3
    fl2 = fluctuations(ens, 2)
    assert_agrees(ens.ntk(2), k, f"{method}: ReLU Theta^(2)")
    for name, coefficient in (("A", 2.0), ("B", 0.5), ("D", 3.0), ("F", 1.0)):
        assert_agrees(fl2[name], coefficient * k * k, f"{method}: ReLU {name}^(2)")
    assert_rejects(fl2["A"], 3.0 * k * k, f"{method}: ReLU A^(2) = 3K^2 (Var z^2 1{{z>0}})")
    assert_rejects(fl2["B"], k * k, f"{method}: ReLU B^(2) without E[sigma'^4] = 1/2")

    def ratio(layer):
        a = ens.ntk_fluctuations(layer).A
        t = ens.ntk(layer)
        r = float(a.value[0, 0, 0, 0] / t.value[0, 0] ** 2)
        err = abs(r) * math.hypot(
            float(a.error[0, 0, 0, 0] / a.value[0, 0, 0, 0]),
            2.0 * float(t.error[0, 0] / t.value[0, 0]),
        )
        return r, err

    ratios = [ratio(layer) for layer in range(2, len(widths))]
    values = [r for r, _ in ratios]
    assert all(b > a for a, b in zip(values, values[1:])), ratios
    (r2, e2), (rl, el) = ratios[0], ratios[-1]
    assert rl > 2.0 * r2, ratios
    assert (rl - r2) / math.hypot(e2, el) > Z_REJECT, ratios


# -------------------------------------------------------- h. dense and projected agree


def comparison_z(ens_a, ens_b):
    return zs_mod.comparison_z(ens_a, ens_b, ntk_observables)


AGREE_WIDTHS = (3, 10, 7, 12)


@pytest.fixture(scope="module")
def agree_ensembles():
    cache = {}

    def get(init, method, seed):
        key = (init, method, seed)
        if key not in cache:
            net = make_net(init, AGREE_WIDTHS, "tanh", [1.6, 1.3, 1.8], [0.1, 0.2, 0.05])
            cache[key] = nf.sample(
                net,
                X3,
                40_000,
                seed=seed,
                method=method,
                observables=("two_point", "ntk"),
                lambda_b=0.5,
                lambda_w=1.5,
                ntk_readouts=3,
            )
        return cache[key]

    return get


def test_dense_and_projected_agree(agree_ensembles):
    dense = agree_ensembles("gaussian", "dense", 91)
    projected = agree_ensembles("gaussian", "projected", 92)
    assert_methods_agree(dense, projected, ntk_observables, "dense vs projected NTK")


def test_dense_projected_comparison_has_power(agree_ensembles):
    """Negative control: dense orthogonal weights (a different law at O(1/n)) against
    projected Gaussian must be rejected on the fluctuations."""
    projected = agree_ensembles("gaussian", "projected", 92)
    ortho = agree_ensembles("orthogonal", "dense", 93)
    zs = comparison_z(ortho, projected)
    fl = {k: v for k, v in zs.items() if k[1] in FLUCTUATIONS}
    assert max(fl.values()) > Z_REJECT, f"orthogonal vs Gaussian not rejected: {zs}"


# ------------------------------------------------------------------------ i. bad input


def test_bad_input():
    net = make_net("gaussian", (3, 6, 5), "tanh", 1.5, 0.1)
    with pytest.raises(ValueError, match="(?i)observable"):
        nf.sample(net, X2, 10, observables=("two_point", "ntk", "bogus"))
    for kw in (
        {"lambda_b": -0.1},
        {"lambda_w": -1.0},
        {"lambda_b": float("nan")},
        {"lambda_w": float("inf")},
    ):
        with pytest.raises(ValueError, match="(?i)lambda"):
            nf.sample(net, X2, 10, observables=("two_point", "ntk"), **kw)
        with pytest.raises(ValueError, match="(?i)lambda"):
            nf.ntk_samples(net, X2, 4, **kw)
    for r in (1, 6, 0):
        with pytest.raises(ValueError, match="(?i)readout"):
            nf.sample(net, X2, 10, observables=("two_point", "ntk"), ntk_readouts=r)
        with pytest.raises(ValueError, match="(?i)readout"):
            nf.ntk_samples(net, X2, 4, readouts=r)
    with pytest.raises((TypeError, ValueError), match="(?i)readout"):
        nf.ntk_samples(net, X2, 4, readouts=2.5)
    ens = nf.sample(net, X2, 10, observables=("two_point",))
    with pytest.raises(ValueError, match="(?i)ntk"):
        ens.ntk(1)
    with pytest.raises(ValueError, match="(?i)ntk"):
        ens.ntk_fluctuations(2)
    ens = nf.sample(net, X2, 10, observables=("two_point", "ntk"))
    with pytest.raises(ValueError, match="(?i)neurons"):
        ens.ntk(1, neurons="bogus")
    with pytest.raises(ValueError, match="(?i)layer"):
        ens.ntk(3)
    with pytest.raises((TypeError, ValueError)):
        ens.ntk_fluctuations(0)
    unif = make_net("uniform", (3, 6, 5), "tanh", 1.5, 0.1)
    with pytest.raises(ValueError, match="(?i)projected"):
        nf.ntk_samples(unif, X2, 4, method="projected")


def _table_row(text, layer):
    """The cells of the Markdown rows of ``layer`` in ``text`` (one list per row)."""
    return [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in text.splitlines()
        if line.startswith(f"| {layer} |")
    ]


def test_ntk_fluctuations_example_runs(tmp_path, capsys):
    """examples/ntk_fluctuations.py end to end on a small ensemble: its tables carry the
    leading-order predictions (the ReLU closed forms at layer 8) beside the measured values."""
    load_example("ntk_fluctuations").main(str(tmp_path), 500)
    out = capsys.readouterr().out
    header = "| layer | Theta/(l K/2) | A/Theta^2 | leading 1/n | z | B/Theta^2 | leading 1/n | z |"
    assert out.count(header) == 2  # one table per init
    gaussian, orthogonal = _table_row(out, 8)  # every layer: 8 rows of each
    # predicted A/Theta^2, B/Theta^2, D/(Theta K), F/(Theta K) (theory/ntk_fluctuations.py)
    assert [gaussian[i] for i in (3, 6, 9, 12)] == ["15.75", "4.375", "21", "7"]
    assert [orthogonal[i] for i in (3, 6, 9, 12)] == ["11.38", "2.188", "14", "3.5"]
    assert all("±" in gaussian[i] and "±" in orthogonal[i] for i in (2, 5, 8, 11))
    assert (tmp_path / "ntk_fluctuations.png").stat().st_size > 10_000


def test_report_plots_ntk(tmp_path):
    """write_report of an NTK store adds ntk.png, ntk_fluctuations.png and NTK columns for
    NTK runs only; Theta in the table is the ensemble's estimate and its theory column the
    recursion; the fluctuation table has the leading-order A, B, D, F at the run's learning
    rates (ReLU closed forms, layer 3) beside the measured values."""
    from nnft_fast.report import per_layer, write_report
    from nnft_fast.theory import ntk_recursion

    net = nf.Network((8, 16, 16, 16), "relu", "gaussian", 2.0, 0.0)
    x = np.ones((1, 8))
    kw = dict(observables=("two_point", "ntk"), lambda_b=0.5, lambda_w=1.5)
    nf.sample(net, x, 500, seed=3, store=tmp_path / "ntk.h5", **kw)
    with_ntk = nf.open(tmp_path / "ntk.h5")
    paths = write_report([with_ntk], str(tmp_path / "a"))
    for key in ("Theta", "AT2"):
        assert os.path.getsize(paths[key]) > 10_000
    assert paths["AT2"].endswith("ntk_fluctuations.png")
    summary = open(paths["summary"]).read()
    assert "A/Theta^2 | leading 1/n | z | B/Theta^2" in summary
    theory = ntk_recursion(net, x, 0.5, 1.5)[2][0, 0]
    assert f"{with_ntk.ntk(3).value[0, 0]:.6g}" in summary and f"{theory:.6g}" in summary
    # theta = lambda_b + lambda_W K / 2 = 2, Theta = 3 theta, K = 2 at layer 3
    closed = {"A": 100.25 / 36, "B": 40 / 36, "D": 57 / 12, "F": 2.0}
    rows = per_layer(with_ntk)
    for name, value in closed.items():
        np.testing.assert_allclose(rows[f"ntk_{name}_theory"][2], value, rtol=1e-9)
        z = (rows[f"ntk_{name}"][2] - value) / rows[f"ntk_{name}_err"][2]
        np.testing.assert_allclose(rows[f"ntk_{name}_z"][2], z)
    (_, fluct_row) = _table_row(summary, 3)  # the K/Theta table's and the fluctuations'
    assert [fluct_row[i] for i in (2, 5, 8, 11)] == ["2.785", "1.111", "4.75", "2"]
    without = nf.sample(net, x, 500, seed=3)
    paths = write_report([without], str(tmp_path / "b"))
    assert "Theta" not in paths and "A/Theta^2" not in open(paths["summary"]).read()
    assert "AT2" not in paths


def test_store_checkpoints_ntk_and_resumes_bit_identical(tmp_path):
    """An NTK run streamed to HDF5, interrupted after some batches and resumed, holds
    exactly the in-memory NTK and moment accumulators; nf.open reads them back."""
    net = nf.Network((4, 8, 6, 8), "tanh", "gaussian", 1.5, 0.1)
    x = np.array([[0.5, -1.0, 0.3, 0.8], [1.0, 0.2, -0.5, 0.1]])
    kw = dict(
        observables=("two_point", "four_point", "ntk"), lambda_b=0.3, lambda_w=1.7, ntk_readouts=3
    )
    memory = nf.sample(net, x, 500, seed=11, **kw)
    path = tmp_path / "ntk.h5"

    class Stop(Exception):
        pass

    def interrupt(done, total):
        if done >= 200:
            raise Stop

    with pytest.raises(Stop):
        nf.sample(net, x, 500, seed=11, store=path, batch_size=70, progress=interrupt, **kw)
    partial = nf.open(path)
    assert 200 <= partial.n_networks < 500 and partial.has_ntk
    resumed = nf.resume(path, batch_size=90)
    for ens in (resumed, nf.open(path)):
        assert ens.n_networks == 500
        np.testing.assert_array_equal(
            ens.ntk_accumulator.block_sums, memory.ntk_accumulator.block_sums
        )
        np.testing.assert_array_equal(ens.accumulator.block_sums, memory.accumulator.block_sums)
        np.testing.assert_array_equal(
            ens.ntk_fluctuations(3).B.value, memory.ntk_fluctuations(3).B.value
        )
    config = nf.store_info(path)["config"]
    assert config["ntk"] == {"lambda_b": 0.3, "lambda_w": 1.7, "readouts": 3}


def test_cli_run_and_report_with_ntk(tmp_path, capsys):
    """`nnft run` with "ntk" in a TOML config stores the NTK; `nnft report` plots it."""
    from nnft_fast.cli import main

    cfg = tmp_path / "ntk.toml"
    cfg.write_text("""
[network]
widths = [4, 8, 8]
activation = "relu"
init = "gaussian"
cw = 2.0

[inputs]
n = 2
seed = 1

[run]
n_networks = 300
observables = ["two_point", "ntk"]
lambda_b = 0.0
lambda_w = 2.0
ntk_readouts = 3
""")
    out = tmp_path / "ntk.h5"
    assert main(["run", str(cfg), "--out", str(out), "--quiet"]) == 0
    ens = nf.open(out)
    assert ens.ntk_accumulator.lambda_w == 2.0 and ens.ntk_accumulator.n_readouts == 3
    direct = nf.sample(
        ens.network,
        ens.inputs,
        300,
        0,
        observables=("two_point", "ntk"),
        lambda_b=0.0,
        lambda_w=2.0,
        ntk_readouts=3,
    )
    np.testing.assert_array_equal(ens.ntk(2).value, direct.ntk(2).value)
    rep = tmp_path / "rep"
    assert main(["report", str(out), "--out", str(rep)]) == 0
    assert os.path.getsize(rep / "ntk.png") > 10_000
    assert "A/Theta^2" in (rep / "summary.md").read_text()
    capsys.readouterr()


@pytest.mark.parametrize(
    "widths", [(3, 24, 24, 24), (3, 14, 30, 18)], ids=["square", "grow-shrink"]
)
def test_projected_orthogonal_agrees_with_dense(widths):
    """Projected Haar NTK (Omega = V Q^T + Haar complement isometry) against explicit Haar
    weights, every statistic at every layer, square and rectangular layers."""
    net = make_net("orthogonal", widths, "tanh", [1.6, 1.3, 1.8], [0.1, 0.2, 0.05])
    kw = dict(observables=("two_point", "ntk"), lambda_b=0.5, lambda_w=1.5)
    dense = nf.sample(net, X2, 20_000, seed=71, method="dense", **kw)
    projected = nf.sample(net, X2, 40_000, seed=72, method="projected", **kw)
    # layer-1 fluctuations are exactly 0 in both (rounding noise only; test f checks them)
    zs = {k: v for k, v in comparison_z(dense, projected).items() if k[0] > 1 or k[1] == "Theta"}
    worst = max(zs, key=zs.get)
    assert zs[worst] < Z_PASS, f"worst {worst} |z| = {zs[worst]:.2f}; {zs}"
    # power: the same comparison against Gaussian weights is rejected
    gauss = nf.sample(
        make_net("gaussian", widths, "tanh", [1.6, 1.3, 1.8], [0.1, 0.2, 0.05]),
        X2,
        40_000,
        seed=73,
        method="projected",
        **kw,
    )
    fl = {k: v for k, v in comparison_z(dense, gauss).items() if k[1] in FLUCTUATIONS}
    assert max(fl.values()) > Z_REJECT, fl


def test_projected_orthogonal_ntk_needs_room():
    """Too narrow for the projected Haar backward: a clear error, and auto picks dense."""
    net = make_net("orthogonal", (3, 6, 5, 6), "tanh", 1.5, 0.1)
    with pytest.raises(ValueError, match="narrow"):
        nf.sample(net, X2, 10, method="projected", observables=("two_point", "ntk"))
    assert nf.sample(net, X2, 10, observables=("two_point", "ntk")).method == "dense"
    wide = make_net("orthogonal", (3, 24, 24), "tanh", 1.5, 0.1)
    assert nf.sample(wide, X2, 10, observables=("two_point", "ntk")).method == "projected"
