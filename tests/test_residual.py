"""Residual networks (docs/conventions.md#residual): z^(l) = xi z^(l-1) + gamma (b + W sigma)
at the layers l >= 2 of unchanged width.

The API and its validation; every kernel (dense and projected, every weight law, the
forward pass and the statistics driver) against the NumPy reference per network; the
store and TOML round trips; the exact finite-width moments of deep linear residual
networks (tests/reference.py) and the kernel, vertex and criticality theory against
ensembles by z-scores.
"""

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


def test_ntk_is_refused_for_residual_networks():
    net = nf.Network((3, 4, 4), "tanh", xi=0.5)
    x = make_inputs(2, 3)
    for call in (
        lambda: nf.sample(net, x, 4, observables=("two_point", "ntk")),
        lambda: nf.ntk_samples(net, x, 2),
        lambda: theory.ntk_recursion(net, x),
    ):
        with pytest.raises(ValueError, match="not yet supported for residual networks"):
            call()
    nf.sample(nf.Network((3, 4, 4), "tanh"), x, 4, observables=("two_point", "ntk"))


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
    with pytest.raises(ConfigError, match="'network.gamma' has the wrong type"):
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
