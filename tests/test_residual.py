"""Residual networks (docs/conventions.md#residual): z^(l) = xi z^(l-1) + gamma (b + W sigma)
at the layers l >= 2 of unchanged width.

The API and its validation; every kernel (dense and projected, every weight law, the
forward pass and the statistics driver, user activations, deformations) against the NumPy
reference per network; the store and TOML round trips; the exact finite-width moments of
deep linear residual networks (tests/reference.py) and the kernel, vertex and criticality
theory against ensembles by z-scores. (The NTK of residual networks:
tests/test_residual_ntk.py.)
"""

import math

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import theory
from nnft_fast.config import ConfigError, parse_config
from nnft_fast.run import EnsembleRun

from . import reference as ref
from ._zscores import assert_agrees, assert_methods_agree, assert_rejects, comparison_z
from .test_kernels_vs_reference import assert_close_scaled, make_inputs

# ------------------------------------------------------------------------------ the API


def test_defaults_are_plain_networks():
    """xi = 0, gamma = 1 everywhere, the description of every existing network unchanged,
    and explicit defaults the same network."""
    plain = nf.Network((3, 4, 4, 2), "tanh", cw=1.5, cb=0.1)
    assert not plain.is_residual
    np.testing.assert_array_equal(plain.xi_array, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(plain.gamma_array, [1.0, 1.0, 1.0])
    assert set(plain.config()) == {"widths", "activation", "init", "cw", "cb"}
    same = nf.Network((3, 4, 4, 2), "tanh", cw=1.5, cb=0.1, xi=0.0, gamma=[1, 1, 1])
    assert same == plain and hash(same) == hash(plain)
    residual = nf.Network((3, 4, 4, 2), "tanh", cw=1.5, cb=0.1, xi=0.5)
    assert residual.is_residual and residual != plain
    assert residual.config()["xi"] == [0.0, 0.5, 0.0]
    assert residual.config()["gamma"] == [1.0, 1.0, 1.0]


def test_scalars_apply_to_the_layers_of_unchanged_width():
    net = nf.Network((3, 5, 5, 5, 2), xi=0.5, gamma=0.8)
    np.testing.assert_array_equal(net.xi_array, [0.0, 0.5, 0.5, 0.0])
    np.testing.assert_array_equal(net.gamma_array, [1.0, 0.8, 0.8, 1.0])
    # layer 2 widens: only layer 3 is residual; negative values are allowed
    net = nf.Network((3, 5, 6, 6), xi=[0, 0, -0.3], gamma=np.array([1.0, 1.0, -2.0]))
    np.testing.assert_array_equal(net.xi_array, [0.0, 0.0, -0.3])
    np.testing.assert_array_equal(net.gamma_array, [1.0, 1.0, -2.0])
    # no residual layer at all: a scalar changes nothing
    assert not nf.Network((3, 4, 2), xi=0.7, gamma=0.5).is_residual


@pytest.mark.parametrize("param", ["xi", "gamma"])
@pytest.mark.parametrize(
    "value,exc,match",
    [
        (float("nan"), ValueError, "must be finite"),
        (float("inf"), ValueError, "must be finite"),
        ([0.0, 0.5, float("-inf")], ValueError, "must be finite"),
        ("0.5", TypeError, "must be a number"),
        (None, TypeError, "must be a number"),
        (True, TypeError, "got bool"),
        ([0.0, True, 0.5], TypeError, "sequence with bools"),
        (1j, TypeError, "must be a number"),
        ([0.0, 0.5], ValueError, r"one value per layer \(3\)"),
        ([[0.0, 0.5, 0.5]], ValueError, "one value per layer"),
    ],
)
def test_bad_residual_coefficients(param, value, exc, match):
    with pytest.raises(exc, match=f"{param} must.*{match}|{param}.*{match}"):
        nf.Network((3, 4, 4, 4), **{param: value})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"xi": [0.5, 0.0, 0.0]}, r"xi\[0\] = 0.5: layer 1 has no residual connection"),
        ({"gamma": [2.0, 1.0, 1.0]}, r"gamma\[0\] = 2.0: layer 1 has no residual"),
        ({"xi": [0.0, 0.0, 0.5]}, r"xi\[2\] = 0.5: layer 3 changes the width \(4 -> 2\)"),
        ({"gamma": [1.0, 0.0, 0.5]}, r"gamma\[2\] = 0.5: layer 3 changes the width"),
    ],
)
def test_residual_connections_need_equal_widths(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nf.Network((3, 4, 4, 2), **kwargs)


def test_store_and_toml_round_trips(tmp_path):
    """A residual network's store rebuilds it (resume: the same network, bit-identical
    sums), and a TOML [network] table takes xi and gamma (errors name the table)."""
    net = nf.Network((3, 5, 5, 5), "tanh", cw=1.4, cb=0.1, xi=[0, 0.6, -0.4], gamma=0.9)
    x = make_inputs(2, 3)
    path = str(tmp_path / "res.h5")

    def stop(done, total):
        if done >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nf.sample(net, x, 60, 3, store=path, batch_size=10, progress=stop)
    resumed = nf.resume(path)
    assert resumed.network == net
    np.testing.assert_array_equal(resumed.network.xi_array, [0.0, 0.6, -0.4])
    whole = nf.sample(net, x, 60, 3)
    np.testing.assert_array_equal(resumed.accumulator.block_sums, whole.accumulator.block_sums)
    text = (
        "[network]\nwidths = [3, 5, 5, 5]\nactivation = 'tanh'\ncw = 1.4\ncb = 0.1\n"
        "xi = [0.0, 0.6, -0.4]\ngamma = 0.9\n[run]\nn_networks = 4\n"
    )
    assert parse_config(text).network == net
    assert not parse_config(
        "[network]\nwidths = [3, 4]\n[run]\nn_networks = 4\n"
    ).network.is_residual
    with pytest.raises(ConfigError, match=r"\[network\]: xi\[0\] = 0.5"):
        parse_config(text.replace("xi = [0.0,", "xi = [0.5,"))
    with pytest.raises(ConfigError, match="'network.gamma' must be a number"):
        parse_config(text.replace("gamma = 0.9", "gamma = 'big'"))


# -------------------------------------------------------------- kernels vs the reference

# (method, init, activation, widths, cw, cb, xi, gamma)
KERNEL_CASES = [
    ("dense", "gaussian", "tanh", (3, 5, 5, 5, 2), 1.5, 0.2, [0, 0.7, -0.4, 0], [1, 0.8, 1.3, 1]),
    ("dense", "uniform", "relu", (3, 6, 6, 4), 2.0, 0.1, 0.5, 0.9),
    ("dense", "orthogonal", "erf", (4, 5, 5, 5), 1.2, 0.0, 0.6, 0.7),
    ("dense", "gaussian", "relu", (3, 4, 4, 4), 2.0, 0.1, 0.0, [1, 0.5, 2.0]),  # gamma only
    (
        "projected",
        "gaussian",
        "tanh",
        (3, 5, 5, 5, 2),
        1.5,
        0.2,
        [0, 0.7, -0.4, 0],
        [1, 0.8, 1.3, 1],
    ),
    ("projected", "orthogonal", "tanh", (4, 6, 6, 6), 1.3, 0.1, 0.8, 0.6),
    ("projected", "gaussian", "relu", (3, 2, 2, 2), 2.0, 0.1, 0.9, 0.5),  # B > n
]


def _case_id(case):
    method, init, act, widths = case[:4]
    return f"{method}-{init}-{act}-{'x'.join(map(str, widths))}"


def _reference(case, net, x, seed, network):
    """reference.residual_forward of network ``network`` of a KERNEL_CASES case."""
    method, init, act, widths, cw, cb = case[:6]
    return ref.residual_forward(
        method,
        widths,
        ref.ACTIVATIONS[act],
        init,
        cw,
        cb,
        net.xi_array,
        net.gamma_array,
        x,
        seed,
        network,
    )


@pytest.mark.parametrize("case", KERNEL_CASES, ids=_case_id)
def test_preactivations_match_reference(case):
    """nf.preactivations (moments.forward_one) per network and layer against
    reference.residual_forward, and the plain network's numbers differ (power)."""
    method, init, act, widths, cw, cb, xi, gamma = case
    net = nf.Network(widths, act, init, cw=cw, cb=cb, xi=xi, gamma=gamma)
    x = make_inputs(3, widths[0])
    seed, first, count = 97, 5, 3
    zs = nf.preactivations(net, x, count, seed, method=method, first_network=first)
    plain = nf.preactivations(
        nf.Network(widths, act, init, cw=cw, cb=cb),
        x,
        count,
        seed,
        method=method,
        first_network=first,
    )
    for t in range(count):
        expected = _reference(case, net, x, seed, first + t)
        for layer, (z, ez) in enumerate(zip(zs, expected), start=1):
            assert_close_scaled(z[t], ez, err_msg=f"network {first + t}, layer {layer}")
    np.testing.assert_array_equal(zs[0], plain[0])  # layer 1 is never residual
    assert np.max(np.abs(zs[2] - plain[2])) > 0.1


@pytest.mark.parametrize("case", KERNEL_CASES[:2] + KERNEL_CASES[4:6], ids=_case_id)
def test_sample_statistics_match_reference(case):
    """nf.sample (moments.batch_statistics: z^(l-1) kept aside while the kernel writes
    layer l) against the reference estimators on reference.residual_forward samples."""
    method, init, act, widths, cw, cb, xi, gamma = case
    net = nf.Network(widths, act, init, cw=cw, cb=cb, xi=xi, gamma=gamma)
    x = make_inputs(2, widths[0], seed=8)
    seed, first, n_networks = 4242, 11, 120
    ens = nf.sample(net, x, n_networks, seed, method=method, first_network=first, batch_size=50)
    per_net = [_reference(case, net, x, seed, e) for e in range(first, first + n_networks)]
    for layer in range(1, len(widths)):
        samples = np.stack([p[layer - 1] for p in per_net])
        expected = ref.moment_estimates(samples, widths[layer - 1], first=first)
        for name, got in (
            ("two_point", ens.two_point(layer)),
            ("same_raw", ens.four_point(layer, connected=False, neurons="same")),
            ("distinct_raw", ens.four_point(layer, connected=False, neurons="distinct")),
            ("vertex", ens.vertex(layer)),
        ):
            value, error = expected[name]
            assert_close_scaled(got.value, value, err_msg=f"layer {layer} {name}")
            assert_close_scaled(
                got.error, error, rtol=1e-7, scale=np.max(np.abs(value)), err_msg=f"{layer} {name}"
            )


def test_float32_forward_matches_float64():
    net = nf.Network((3, 6, 6, 6), "tanh", cw=1.5, cb=0.1, xi=0.7, gamma=0.8)
    x = make_inputs(2, 3)
    for method in ("dense", "projected"):
        z64 = nf.preactivations(net, x, 3, 5, method=method)
        z32 = nf.preactivations(net, x, 3, 5, method=method, dtype=np.float32)
        for a, b in zip(z32, z64):
            assert a.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_memory_check_counts_the_residual_buffer():
    """The CPU statistics driver keeps one more (n_max, B) buffer for z^(l-1)."""
    from nnft_fast.memory import run_needs

    x = make_inputs(2, 3)
    plain = EnsembleRun(nf.Network((3, 64, 64)), x, 0, method="dense")
    residual = EnsembleRun(nf.Network((3, 64, 64), xi=0.5), x, 0, method="dense")
    extra = (
        run_needs(residual, 1, "statistics")[0].nbytes - run_needs(plain, 1, "statistics")[0].nbytes
    )
    assert extra == 8 * 64 * 2


# ------------------------------------------------------------ exact deep-linear results

LINEAR = dict(cw=1.1, cb=0.15, xi=0.8, gamma=0.6)


def test_deep_linear_recursion_is_exact_in_law():
    """Linear sigma, Gaussian weights, one input: K, E[z^4] and E[z_i^2 z_j^2] of every
    layer are those of reference.deep_linear_residual_moments at width 5 (exact at finite
    width), on both samplers; the leading-order (infinite-width) four-point values and
    the same recursion without its residual cross terms are rejected."""
    widths = (2, 5, 5, 5, 5)
    net = nf.Network(widths, "linear", **LINEAR)
    x = np.array([[0.9, -1.3]])
    exact = ref.deep_linear_residual_moments(widths, **LINEAR, x=x)
    no_cross = ref.deep_linear_residual_moments(widths, LINEAR["cw"], LINEAR["cb"], 0.0, 1.0, x)
    for method in ("dense", "projected"):
        ens = nf.sample(net, x, 60_000, 31, method=method)
        for layer, (k, a, d) in enumerate(exact, start=1):
            assert_agrees(ens.two_point(layer), [[k]], f"{method} K^({layer})")
            same = ens.four_point(layer, connected=False, neurons="same")
            distinct = ens.four_point(layer, connected=False, neurons="distinct")
            assert_agrees(same, [[[[a]]]], f"{method} E[z^4] layer {layer}")
            assert_agrees(distinct, [[[[d]]]], f"{method} E[z_i^2 z_j^2] layer {layer}")
        k, a, d = exact[-1]
        assert_rejects(
            ens.four_point(4, connected=False, neurons="same"), 3 * k * k, "E z^4 = 3K^2"
        )
        assert_rejects(ens.two_point(4), no_cross[-1][0], "the plain kernel recursion")


def test_vertex_recursion_is_the_leading_order_of_the_exact_linear_result():
    """n (D - K^2) of the exact finite-width recursion tends to theory.vertex_recursion like
    1/n, and the recursion's V/K^2 gains 2 (1 - xi^4 / chi^2) per layer."""
    x = np.array([[0.9, -1.3]])
    gaps = []
    for n in (1_000, 10_000):
        widths = (2,) + (n,) * 4
        exact = ref.deep_linear_residual_moments(widths, **LINEAR, x=x)
        ks, vs = theory.vertex_recursion(nf.Network(widths, "linear", **LINEAR), x)
        for (k, _, _), kt in zip(exact, ks):
            assert k == pytest.approx(kt[0, 0], rel=1e-13)
        gaps.append(max(abs(n * (d - k * k) - v[0, 0, 0, 0]) for (k, _, d), v in zip(exact, vs)))
    assert gaps[1] < gaps[0] / 8
    xi2, g2c = LINEAR["xi"] ** 2, LINEAR["gamma"] ** 2 * LINEAR["cw"]
    chi = xi2 + g2c
    no_bias = nf.Network(
        (2, 50, 50, 50), "linear", cw=LINEAR["cw"], xi=LINEAR["xi"], gamma=LINEAR["gamma"]
    )
    ks, vs = theory.vertex_recursion(no_bias, x)
    ratios = [v[0, 0, 0, 0] / k[0, 0] ** 2 for k, v in zip(ks, vs)]
    np.testing.assert_allclose(np.diff(ratios), 2 * (1 - xi2 * xi2 / chi**2), rtol=1e-9)
    np.testing.assert_allclose([k[0, 0] for k in ks], ks[0][0, 0] * chi ** np.arange(3), rtol=1e-13)


def _observables(ens, layer):
    return [
        ("K", ens.two_point(layer)),
        ("same", ens.four_point(layer, connected=True, neurons="same")),
        ("V", ens.vertex(layer)),
    ]


def test_projected_and_dense_samplers_agree_in_law():
    """Gaussian and Haar residual networks: every statistic of every layer of the projected
    sampler against the dense one (z-scores), and a plain network is told apart."""
    x = make_inputs(2, 3, seed=4)
    for init in ("gaussian", "orthogonal"):
        net = nf.Network((3, 8, 8, 8), "tanh", init, cw=1.5, cb=0.1, xi=0.7, gamma=0.8)
        dense = nf.sample(net, x, 30_000, 1, method="dense")
        projected = nf.sample(net, x, 30_000, 2, method="projected")
        assert_methods_agree(dense, projected, _observables, f"{init} dense vs projected")
        plain = nf.sample(nf.Network((3, 8, 8, 8), "tanh", init, cw=1.5, cb=0.1), x, 30_000, 2)
        assert max(comparison_z(dense, plain, _observables).values()) > 20


# ------------------------------------------------------------ the vertex against ensembles

RELU = dict(cw=1.0, cb=0.1, xi=0.7, gamma=0.9)


def _scaled_deviations(init, widths_n, n_networks, seed):
    """{n: [(n (V_measured - V_predicted), n error, ensemble, predictions) per layer]} of a
    residual ReLU network (3, n, n, n, n) on one input."""
    x = np.array([[1.0, 0.3, -0.5]])
    out = {}
    for n in widths_n:
        net = nf.Network((3,) + (n,) * 4, "relu", init, **RELU)
        _, vs = theory.vertex_recursion(net, x)
        ens = nf.sample(net, x, n_networks, seed + n)
        out[n] = [
            (n * (ens.vertex(l).value - vs[l - 1]), n * ens.vertex(l).error, ens, vs)
            for l in range(1, 5)
        ]
    return out


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_vertex_recursion_is_the_1_over_n_term_of_residual_relu_networks(init):
    """n (V_measured - V_predicted) is the same at n = 16 and 64 at every layer (the next
    order), so the prediction is the 1/n term; Gaussian layer 2 is exact at any width. A
    10% error of the prediction at layer 4 fails the same check. (ReLU has
    <d(s s)> != 0: the residual neurons carry three-point cross cumulants at order 1/n,
    which a recursion of V alone misses by 25% at layer 4.)"""
    dev = _scaled_deviations(init, (16, 64), 200_000, 7 if init == "gaussian" else 9)
    for layer in range(2, 5):
        (a, ea, ens16, vs), (b, eb, ens64, _) = dev[16][layer - 1], dev[64][layer - 1]
        z = (a - b) / np.hypot(ea, eb)
        assert np.max(np.abs(z)) < 4.5, (init, layer, a, ea, b, eb)
        if init == "gaussian" and layer == 2:
            assert_agrees(ens64.vertex(2), vs[1], "Gaussian V^(2) exact at n = 64")
    (_, ea, ens16, vs16), (_, eb, ens64, vs64) = dev[16][3], dev[64][3]
    wrong = [
        16 * (ens16.vertex(4).value - 1.1 * vs16[3]),
        64 * (ens64.vertex(4).value - 1.1 * vs64[3]),
    ]
    assert np.max(np.abs((wrong[0] - wrong[1]) / np.hypot(ea, eb))) > 8


def test_vertex_and_same_neuron_function_at_layer_two_are_exact():
    """Layer 2 of a residual net with Gaussian weights is exact at any width (layer 1 is
    Gaussian): V^(2), and the same-neuron connected function = the sum of V^(2) over the
    three pairings / n_1, two inputs, tanh, width 12; dropping the xi^2 gamma^2 term
    (the plain recursion times gamma^4) is rejected."""
    x = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.4]])
    net = nf.Network((3, 12, 12), "tanh", cw=1.5, cb=0.1, xi=0.6, gamma=0.9)
    _, vs = theory.vertex_recursion(net, x)
    ens = nf.sample(net, x, 100_000, 3)
    assert_agrees(ens.vertex(2), vs[1], "V^(2)")
    same = ens.four_point(2, connected=True, neurons="same")
    assert_agrees(same, theory.same_neuron_connected(vs[1], 12), "same-neuron layer 2")
    _, no_cross = theory.vertex_recursion(
        nf.Network((3, 12, 12), "tanh", cw=1.5, cb=0.1, gamma=0.9), x
    )
    assert_rejects(ens.vertex(2), no_cross[1], "V^(2) without the xi^2 gamma^2 term")


def test_functional_recursion_reduces_to_the_plain_one():
    """The residual recursion (C_l of arbitrary functions) evaluated on plain networks,
    Gaussian and Haar, gives the plain vertex recursion (to quadrature accuracy)."""
    from nnft_fast.theory.vertex import _ResidualVertex

    x = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.4]])
    for init in ("gaussian", "orthogonal"):
        net = nf.Network((3, 8, 10, 10), "erf", init, cw=1.5, cb=0.1, gamma=[1, 1, 1.2])
        ks, vs = theory.vertex_recursion(net, x)
        general = _ResidualVertex(net, ks, init == "orthogonal")
        for layer in (2, 3):
            scale = np.max(np.abs(vs[layer - 1]))
            np.testing.assert_allclose(general.vertex(layer), vs[layer - 1], atol=1e-6 * scale)


# ------------------------------------------------------------------------------ criticality


@pytest.mark.parametrize(
    "activation,cls",
    [
        ("relu", "scale-invariant"),
        ("linear", "scale-invariant"),
        ("tanh", "K*=0"),
        ("gelu", "K*>0"),
    ],
)
def test_residual_critical_points(activation, cls):
    """The plain critical (C_b, C_W) times (1 - xi^2) / gamma^2, same K* and class, and
    chi_par = chi_perp = 1 there (at K*, or at any K for the scale-invariant class)."""
    xi, gamma = 0.6, 0.8
    plain = theory.find_critical(activation)
    point = theory.find_critical(activation, xi=xi, gamma=gamma)
    assert (point.xi, point.gamma, point.universality_class) == (xi, gamma, cls)
    scale = (1 - xi * xi) / (gamma * gamma)
    assert point.cw == pytest.approx(plain.cw * scale, rel=1e-12)
    assert point.cb == pytest.approx(plain.cb * scale, rel=1e-12, abs=1e-15)
    assert point.k_star == plain.k_star
    for k in (0.4, 2.5) if point.k_star is None else (point.k_star or 1e-6,):
        chis = theory.susceptibilities(activation, point.cb, point.cw, k, xi=xi, gamma=gamma)
        assert chis == pytest.approx((1.0, 1.0), abs=1e-5 if point.k_star == 0 else 1e-9)
    if activation == "relu":
        assert point.cw == pytest.approx(2 * (1 - xi * xi) / gamma**2, rel=1e-12)
    if cls == "K*>0":  # K* is a fixed point of the residual kernel recursion
        widths = (1,) + (6,) * 4
        net = nf.Network(
            widths,
            activation,
            cw=[1.0] + [point.cw] * 3,
            cb=[0.0] + [point.cb] * 3,
            xi=xi,
            gamma=gamma,
        )
        ks = theory.kernel_recursion(net, [[math.sqrt(point.k_star)]])
        np.testing.assert_allclose([k[0, 0] for k in ks], point.k_star, rtol=1e-9)


def test_susceptibilities_are_the_derivatives_of_the_kernel_recursion():
    """chi_par = d K'/d K and chi_perp = d(K'_aa - K'_ab) / d(K_aa - K_ab) at coinciding
    inputs, by finite differences of kernel_recursion on a residual layer."""
    xi, gamma, cw, cb = 0.5, 1.3, 1.4, 0.2
    for activation in ("tanh", "relu", "gelu"):
        net = nf.Network((2, 5, 5), activation, cw=[1.0, cw], cb=[0.0, cb], xi=xi, gamma=gamma)
        k1, h = 0.8, 1e-5
        x = np.array([[math.sqrt(2 * k1), 0.0]])

        def k2(scale):
            return theory.kernel_recursion(net, x * scale)[1][0, 0]

        chi_par_fd = (k2(math.sqrt(1 + h)) - k2(math.sqrt(1 - h))) / (2 * h * k1)
        eps = 1e-4
        pair = np.array([[1.0, 0.0], [math.cos(eps), math.sin(eps)]]) * math.sqrt(2 * k1)
        ka, kb = theory.kernel_recursion(net, pair)
        chi_perp_fd = (kb[0, 0] - kb[0, 1]) / (ka[0, 0] - ka[0, 1])
        chi_par, chi_perp = theory.susceptibilities(activation, cb, cw, k1, xi=xi, gamma=gamma)
        assert chi_par_fd == pytest.approx(chi_par, rel=1e-6), activation
        assert chi_perp_fd == pytest.approx(chi_perp, rel=1e-3), activation
        plain = theory.susceptibilities(activation, cb, cw, k1)
        assert chi_par == pytest.approx(xi**2 + gamma**2 * plain[0], rel=1e-12)


@pytest.mark.parametrize(
    "kwargs,exc,match,in_chi",
    [
        ({"xi": 1.0}, ValueError, r"xi\^2 >= 1", False),
        ({"xi": -1.5}, ValueError, r"xi\^2 >= 1", False),
        ({"gamma": 0.0, "xi": 0.5}, ValueError, "gamma = 0", False),
        ({"xi": float("nan")}, ValueError, "xi must be finite", True),
        ({"gamma": "1"}, TypeError, "gamma must be a real number", True),
        ({"xi": True}, TypeError, "xi must be a real number", True),
    ],
)
def test_residual_criticality_validation(kwargs, exc, match, in_chi):
    """find_critical needs xi^2 < 1 and gamma != 0; both it and susceptibilities take
    finite real coefficients only."""
    with pytest.raises(exc, match=match):
        theory.find_critical("relu", **kwargs)
    if in_chi:
        with pytest.raises(exc, match=match):
            theory.susceptibilities("relu", 0.0, 1.0, 1.0, **kwargs)


def test_kernel_recursion_at_layer_two_is_exact():
    """K^(2) = xi^2 K^(1) + gamma^2 (C_b + C_W <s s>) holds at any width (layer 1 is
    Gaussian and W is independent of it): width 6, three inputs, z-scores; the recursion
    without the xi^2 K term is rejected."""
    x = np.array([[1.0, 0.5, -0.2], [0.2, -1.0, 0.4], [0.9, 0.1, 0.1]])
    net = nf.Network((3, 6, 6), "erf", cw=1.5, cb=0.1, xi=0.8, gamma=0.7)
    ens = nf.sample(net, x, 40_000, 13, observables=("two_point",))
    ks = theory.kernel_recursion(net, x)
    for layer in (1, 2):
        assert_agrees(ens.two_point(layer), ks[layer - 1], f"K^({layer})")
    assert_rejects(ens.two_point(2), ks[1] - 0.64 * ks[0], "K^(2) without xi^2 K^(1)")


# ------------------------------------------------------- user activations and deformations


def test_user_activation_residual_network_matches_reference():
    """The kernels re-jitted for a user activation (kernels/cpu/specialise.py) carry the
    residual connections too (the forward pass; the statistics driver is the same source
    as for the built-in activations)."""
    cube = nf.Activation("cube", lambda z: z * z * z, lambda z: 3.0 * z * z)
    widths = (3, 5, 5, 5)
    net = nf.Network(widths, cube, cw=0.8, cb=0.1, xi=0.6, gamma=[1, 0.7, 1.2])
    x = make_inputs(2, 3)
    for method in ("dense", "projected"):
        zs = nf.preactivations(net, x, 2, 21, method=method)
        for t in range(2):
            expected = ref.residual_forward(
                method,
                widths,
                lambda z: z**3,
                "gaussian",
                0.8,
                0.1,
                net.xi_array,
                net.gamma_array,
                x,
                21,
                t,
            )
            for z, ez in zip(zs, expected):
                assert_close_scaled(z[t], ez)


def test_deformed_residual_network_matches_reference():
    """A lambda phi^4 deformation of a residual MLP: the interaction s of every network
    from the outputs at the quadrature nodes, pushed through the same residual network
    as the inputs (dense and projected), against the reference."""
    widths = (2, 5, 5, 3)
    net = nf.Network(widths, "tanh", cw=1.5, cb=0.1, xi=0.6, gamma=0.8)
    x = np.array([[0.1, -0.3], [0.5, 0.2], [-0.4, 0.7]])
    for method in ("dense", "projected"):
        run = EnsembleRun(net, x, 5, method=method, deformation=nf.Phi4(1.0, (-1.0, 1.0), nodes=3))
        stats, _, _ = run.compute(2, 3)
        joint = np.concatenate([x, run.rule.points])
        for t in range(3):
            z = ref.residual_forward(
                method,
                widths,
                np.tanh,
                "gaussian",
                1.5,
                0.1,
                net.xi_array,
                net.gamma_array,
                joint,
                5,
                2 + t,
            )
            s = (z[-1][:, 3:] ** 4 / 24.0).sum(axis=0) @ run.rule.weights
            assert stats[t, 0, -1] == pytest.approx(s, rel=1e-10)


# ------------------------------------------------------------------------------ the example


def test_residual_depth_example_runs(tmp_path, capsys):
    """examples/residual_depth.py on a small ensemble writes its table and figure."""
    pytest.importorskip("matplotlib")
    from ._examples import load_example

    example = load_example("residual_depth")
    results = example.main(str(tmp_path), 2_000, width=16, depth=4)
    out = capsys.readouterr().out
    assert "| network | weights | layer | V/K^2 measured | theory | pull |" in out
    assert len([line for line in out.splitlines() if line.startswith("| residual")]) == 4 * 3
    assert (tmp_path / "residual_depth.png").stat().st_size > 10_000
    plain = results["plain", "gaussian"]["vk2_theory"]
    np.testing.assert_allclose(plain, 5.0 * np.arange(4), atol=1e-9)  # 5 (l - 1)
