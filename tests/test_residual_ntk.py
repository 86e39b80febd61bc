"""The NTK of residual networks (issue 17, point 4): z^(l) = xi z^(l-1) + gamma (b + W sigma)
at the layers l >= 2 of unchanged width (docs/conventions.md#residual).

Per layer l' the parameters enter with gamma_l', so c^(l') = gamma_l'^2 (lambda_b +
lambda_W Gs^(l'-1)), and the backward map is J -> xi_l' J + gamma_l' sigma' * (W^T J)
(kernels/cpu/ntk.py); the infinite-width mean is
    Theta^(l) = xi^2 Theta^(l-1) + gamma^2 [lambda_b + lambda_W <ss> + C_W <s's'> Theta^(l-1)]
(``theory.ntk_recursion``). What is tested:
  a. the NumPy reference (explicit Jacobian matrices, ``reference.residual_ntk_from_
     parameters``) against central finite differences of the definition, and against the
     plain reference when xi = 0, gamma = 1;
  b. ``nf.ntk_samples(method="dense")`` network by network against the reference to 1e-10
     (Gaussian, uniform, orthogonal weights; per-layer and gamma-only coefficients,
     layers of changing width), which differs clearly from the plain network's NTK; the
     statistics path (``nf.sample``) gives the mean of those very samples;
  c. projected samplers (Gaussian, Haar) against the dense one in law: Theta and the
     fluctuations A, B, D, F of every layer by z-scores, with the plain network rejected;
  d. layer 2 with Gaussian weights is exact at any width: Theta^(2) of a width-8 ensemble
     equals the recursion; a wide ensemble (n = 1024) agrees with the recursion at every
     layer; the recursion without the xi^2 Theta^(l-1) term is rejected;
  e. what is still refused is refused with a clear message.
"""

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import theory

from . import reference as ref
from ._zscores import Z_PASS, Z_REJECT, assert_agrees, assert_rejects, comparison_z

X2 = np.array([[0.8, -0.5, 1.1], [-0.3, 0.9, 0.4]])
X3 = np.array([[0.9, -0.6, 1.3], [-0.4, 1.1, 0.5], [1.2, 0.3, -0.8]])
LB, LW = 0.6, 1.3


def activation(name):
    return ref.ACTIVATIONS[name], ref.ACTIVATION_DERIVATIVES[name]


# ------------------------------------------------------------- a. the reference itself


def finite_difference_residual_ntk(weights, biases, act, x, xi, gamma, readouts, eps=1e-5):
    """H^(l) = sum_theta lambda_theta g_theta (x) g_theta, g_theta the central difference
    of ``reference.residual_forward_with_parameters`` (as ``finite_difference_ntk``)."""
    n_layers, nb, r = len(weights), x.shape[0], readouts
    h = [np.zeros((r, r, nb, nb)) for _ in range(n_layers)]
    for arrays, is_weight in ((biases, False), (weights, True)):
        for lp in range(n_layers):
            rate = LW / weights[lp].shape[1] if is_weight else LB
            for index in np.ndindex(arrays[lp].shape):
                old = arrays[lp][index]
                arrays[lp][index] = old + eps
                plus = ref.residual_forward_with_parameters(weights, biases, act, x, xi, gamma)
                arrays[lp][index] = old - eps
                minus = ref.residual_forward_with_parameters(weights, biases, act, x, xi, gamma)
                arrays[lp][index] = old
                for layer in range(n_layers):
                    g = (plus[layer][:r] - minus[layer][:r]) / (2.0 * eps)
                    h[layer] += rate * np.einsum("ia,jb->ijab", g, g)
    return h


def test_reference_matches_finite_differences_and_the_plain_reference():
    widths, xi, gamma = (3, 4, 4, 4), [0.0, 0.7, 0.5], [1.0, 0.8, 1.3]
    sig, dsig = activation("tanh")
    weights, biases = ref.dense_parameters(widths, "gaussian", 1.6, 0.2, 3, 1)
    exact = ref.residual_ntk_from_parameters(weights, biases, sig, dsig, X2, xi, gamma, LB, LW, 3)
    numeric = finite_difference_residual_ntk(weights, biases, sig, X2, xi, gamma, 3)
    plain = ref.residual_ntk_from_parameters(weights, biases, sig, dsig, X2, 0.0, 1.0, LB, LW, 3)
    for layer, (a, b, c) in enumerate(zip(exact, numeric, plain), start=1):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-7 * np.max(np.abs(a)), err_msg=layer)
        if layer >= 2:  # the residual terms matter
            assert np.max(np.abs(a - c)) > 0.05 * np.max(np.abs(a)), layer
    expected = ref.ntk_from_parameters(weights, biases, sig, dsig, X2, LB, LW, 3)
    for a, b in zip(plain, expected):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-13 * np.max(np.abs(b)))


# ----------------------------------------------------- b. dense kernels vs the reference

DENSE_CASES = {
    # name: (init, widths, activation, cw, cb, xi, gamma, readouts, inputs)
    "gaussian-tanh": ("gaussian", (3, 6, 6, 6), "tanh", 1.6, 0.2, 0.7, 0.8, 3, X3),
    "uniform-relu": ("uniform", (3, 7, 7, 5, 5), "relu", 2.0, 0.1, 0.5, 1.2, 2, X2),
    "orthogonal-erf": (
        "orthogonal",
        (3, 8, 5, 5, 5),
        "erf",
        [1.4, 1.2, 1.7, 1.5],
        0.1,
        [0.0, 0.0, 0.6, 0.9],
        [1.0, 1.0, 0.9, 0.5],
        3,
        X3,
    ),
    "gaussian-sin-gamma-only": ("gaussian", (3, 5, 5, 4), "sin", 1.3, 0.3, 0.0, [1, 1.4, 1], 2, X2),
}


@pytest.mark.parametrize("name", sorted(DENSE_CASES))
def test_dense_ntk_samples_match_reference(name):
    init, widths, act, cw, cb, xi, gamma, r, x = DENSE_CASES[name]
    net = nf.Network(widths, act, init, cw=cw, cb=cb, xi=xi, gamma=gamma)
    plain = nf.Network(widths, act, init, cw=cw, cb=cb)
    sig, dsig = activation(act)
    seed, first, count = 17, 4, 3
    kw = dict(seed=seed, method="dense", lambda_b=LB, lambda_w=LW, readouts=r, first_network=first)
    got = nf.ntk_samples(net, x, count, **kw)
    got_plain = nf.ntk_samples(plain, x, count, **kw)
    net_args = (widths, sig, dsig, init, cw, cb, net.xi_array, net.gamma_array, x, seed)
    for t in range(count):
        exp = ref.residual_dense_ntk(*net_args, first + t, LB, LW, r)
        for layer, (h, e, hp) in enumerate(zip(got, exp, got_plain), start=1):
            scale = np.max(np.abs(e))
            np.testing.assert_allclose(
                h[t], e, rtol=0, atol=1e-10 * scale, err_msg=f"{name} {first + t} {layer}"
            )
            # power: where a layer 2..l is residual, the plain network's NTK is far off
            if np.any(net.xi_array[1:layer] != 0) or np.any(net.gamma_array[1:layer] != 1):
                assert np.max(np.abs(hp[t] - e)) > 0.02 * scale, (name, layer)
    # the statistics path: Theta of nf.sample is the mean of these very networks' H_ii
    ens = nf.sample(
        net,
        x,
        count,
        seed=seed,
        method="dense",
        observables=("two_point", "ntk"),
        lambda_b=LB,
        lambda_w=LW,
        ntk_readouts=r,
        first_network=first,
    )
    for layer, h in enumerate(got, start=1):
        theta = np.mean(np.einsum("eiiab->eab", h), axis=0) / r
        np.testing.assert_allclose(ens.ntk(layer).value, theta, rtol=1e-12, atol=1e-14)


# --------------------------------------------------- c. projected samplers, in law

AGREE_WIDTHS = {"gaussian": (3, 10, 10, 10), "orthogonal": (3, 24, 24, 24)}
FLUCTUATIONS = ("A", "B", "D", "F")


def ntk_observables(ens, layer):
    out = [("Theta", ens.ntk(layer)), ("Theta_offdiag", ens.ntk(layer, neurons="distinct"))]
    fl = ens.ntk_fluctuations(layer)
    return out + [(name, getattr(fl, name)) for name in FLUCTUATIONS]


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_projected_ntk_agrees_with_dense_in_law(init):
    """Theta, Theta_offdiag, A, B, D, F of every layer: projected vs dense ensembles of a
    residual tanh net; the plain network (the same weights' law, no residual connection)
    is rejected on Theta."""
    widths = AGREE_WIDTHS[init]
    kw = dict(cw=[1.6, 1.3, 1.8], cb=[0.1, 0.2, 0.05])
    net = nf.Network(widths, "tanh", init, xi=0.7, gamma=[1.0, 0.8, 0.6], **kw)
    opts = dict(observables=("two_point", "ntk"), lambda_b=0.5, lambda_w=1.5)
    x = X3 if init == "gaussian" else X2
    dense = nf.sample(net, x, 20_000, seed=81, method="dense", **opts)
    projected = nf.sample(net, x, 40_000, seed=82, method="projected", **opts)
    assert projected.method == "projected"
    # layer-1 fluctuations are exactly 0 in both (rounding only); Theta^(1) is exact
    zs = {
        k: v
        for k, v in comparison_z(dense, projected, ntk_observables).items()
        if k[0] > 1 or k[1] == "Theta"
    }
    worst = max(zs, key=zs.get)
    assert zs[worst] < Z_PASS, f"worst {worst} |z| = {zs[worst]:.2f}; {zs}"
    plain = nf.sample(nf.Network(widths, "tanh", init, **kw), x, 40_000, seed=83, **opts)
    theta = {k: v for k, v in comparison_z(dense, plain, ntk_observables).items() if k[0] > 1}
    assert max(v for k, v in theta.items() if k[1] == "Theta") > Z_REJECT, theta


# ----------------------------------------------- d. the infinite-width recursion


def without_skip(thetas, xi, layer):
    """The recursion without the xi^2 Theta^(l-1) term at ``layer`` (a negative control)."""
    return thetas[layer - 1] - xi**2 * thetas[layer - 2]


@pytest.mark.parametrize("method", ["dense", "projected"])
def test_layer2_mean_is_exact_at_any_width(method):
    """Gaussian weights: layer 1 is iid Gaussian and H^(1) deterministic, and W^(2) is
    independent of it with mean zero, so E[H^(2)] is the recursion at width 8 exactly."""
    xi, gamma = 0.8, 0.7
    net = nf.Network((3, 8, 8), "tanh", cw=1.5, cb=0.1, xi=xi, gamma=gamma)
    ens = nf.sample(
        net,
        X2,
        100_000,
        seed=91,
        method=method,
        observables=("two_point", "ntk"),
        lambda_b=LB,
        lambda_w=LW,
        ntk_readouts=4,
    )
    thetas = theory.ntk_recursion(net, X2, lambda_b=LB, lambda_w=LW)
    est = ens.ntk(2)
    assert_agrees(est, thetas[1], f"{method} Theta^(2) exact")
    assert_rejects(est, without_skip(thetas, xi, 2), "Theta^(2) without xi^2 Theta^(1)")
    plain = theory.ntk_recursion(nf.Network((3, 8, 8), "tanh", cw=1.5, cb=0.1), X2, LB, LW)
    assert_rejects(est, plain[1], "the plain recursion")


WIDE = 1024
# relative O(1/n) allowance, as tests/test_ntk.py's NTK_TANH_BIAS_16 (2 x 16 x 0.01 / n)
WIDE_BIAS = 2.0 * 16.0 * 0.01 / WIDE


@pytest.mark.parametrize(
    "init, act, xi, gamma, seed",
    [("gaussian", "tanh", 0.8, 0.6, 61), ("orthogonal", "relu", 0.6, [1.0, 0.7, 0.9, 0.8], 62)],
)
def test_wide_mean_matches_the_recursion(init, act, xi, gamma, seed):
    widths = (3,) + (WIDE,) * 4
    net = nf.Network(
        widths, act, init, cw=1.5 if act == "tanh" else 1.0, cb=0.1, xi=xi, gamma=gamma
    )
    ens = nf.sample(
        net,
        X3,
        300,
        seed=seed,
        method="projected",
        observables=("two_point", "ntk"),
        lambda_b=0.7,
        lambda_w=1.2,
        ntk_readouts=8,
    )
    thetas = theory.ntk_recursion(net, X3, lambda_b=0.7, lambda_w=1.2)
    xis = net.xi_array
    for layer in range(1, len(widths)):
        est = ens.ntk(layer)
        extra = WIDE_BIAS * np.abs(thetas[layer - 1])
        assert_agrees(est, thetas[layer - 1], f"Theta^({layer})", extra_error=extra)
        if layer >= 2:
            wrong = without_skip(thetas, xis[layer - 1], layer)
            assert_rejects(est, wrong, f"Theta^({layer}) without xi^2 Theta", extra_error=extra)


# ------------------------------------------------------------- e. what is still refused


def test_residual_ntk_runs_and_the_unsupported_is_refused():
    net = nf.Network((3, 4, 4), "tanh", xi=0.5)
    ens = nf.sample(net, X2, 8, observables=("two_point", "ntk"))
    assert np.all(np.isfinite(ens.ntk(2).value))
    assert len(nf.ntk_samples(net, X2, 2)) == 2
    assert len(theory.ntk_recursion(net, X2)) == 2
    with pytest.raises(ValueError, match="residual"):
        theory.ntk_fluctuation_recursion(net, X2)
