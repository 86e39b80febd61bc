"""The dense sampler (explicit weights) and the exact projected sampler (docs/projected-sampler.md)
must give the same law: every layer's two-point and connected four-point functions
(same and distinct neurons) agree within the package's error bars.

The cases are chosen to stress the projected sampler: several inputs including a
repeated one (rank-deficient S), more inputs than neurons in a narrow layer (B > n),
layers that grow and shrink (both Haar-frame branches), biases, dead ReLUs, and both
Gaussian and orthogonal weights. The two methods are run with different seeds, so their
estimates are independent and z = (a - b) / sqrt(ea^2 + eb^2).

Negative controls show the comparison has power: projected orthogonal against dense
Gaussian weights (a different law, O(1/n) apart in the four-point function) and a 3%
error in C_W on one layer must be rejected.
"""

import numpy as np
import pytest

import nnft_fast as nf

from . import _zscores as zs_mod
from ._zscores import Z_PASS, Z_REJECT, assert_methods_agree

N_NETWORKS = 200_000

X_A = np.array(
    [[0.8, -0.5, 1.1, 0.3, -0.9], [-0.2, 1.0, 0.4, -1.2, 0.6], [0.8, -0.5, 1.1, 0.3, -0.9]]
)  # repeated input: rank(S) = 2
X_B = np.array(
    [[1.0, -0.3, 0.7, 0.2], [-0.6, 0.9, 0.1, -1.1], [0.4, 0.4, -0.8, 0.9], [0.3, -1.2, -0.5, 0.6]]
)  # B = 4 > n = 3 and n = 2

CASES = {
    # name: (widths, inputs, activation, cw, cb)
    "grow-shrink-repeated": ((5, 12, 7, 9), X_A, "relu", 1.8, 0.2),
    "narrow-B-gt-n": ((4, 3, 10, 2, 6), X_B, "tanh", [1.5, 2.0, 1.2, 1.7], [0.1, 0.0, 0.3, 0.05]),
}


def sample(name, init, method, seed, cw_scale=None, dtype=np.float64, n=N_NETWORKS):
    widths, x, act, cw, cb = CASES[name]
    cw = np.broadcast_to(np.asarray(cw, float), (len(widths) - 1,)).copy()
    if cw_scale is not None:
        layer, factor = cw_scale
        cw[layer - 1] *= factor
    net = nf.Network(widths, activation=act, init=init, cw=cw, cb=cb)
    return nf.sample(net, x, n, seed=seed, method=method, dtype=dtype)


def observables(ens, layer):
    """(label, Estimate) for the compared statistics of one layer."""
    return [
        ("K", ens.two_point(layer)),
        ("C_same", ens.four_point(layer, neurons="same")),
        ("C_distinct", ens.four_point(layer, neurons="distinct")),
    ]


def comparison_z(ens_a, ens_b):
    return zs_mod.comparison_z(ens_a, ens_b, observables)


@pytest.fixture(scope="module")
def ensembles():
    """Cache: one sampling per (case, init, method, seed)."""
    cache = {}

    def get(name, init, method, seed, **kw):
        key = (name, init, method, seed, tuple(sorted(kw.items())))
        if key not in cache:
            cache[key] = sample(name, init, method, seed, **kw)
        return cache[key]

    return get


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_dense_and_projected_agree(ensembles, name, init):
    dense = ensembles(name, init, "dense", 101)
    projected = ensembles(name, init, "projected", 202)
    assert dense.method == "dense" and projected.method == "projected"
    assert_methods_agree(dense, projected, observables, f"{name}/{init}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_comparison_has_power(ensembles, name):
    """Negative controls: a different weight law, or C_W 5% off on the last layer,
    must be rejected by the same statistic."""
    dense_gauss = ensembles(name, "gaussian", "dense", 101)
    proj_ortho = ensembles(name, "orthogonal", "projected", 202)
    zs = comparison_z(dense_gauss, proj_ortho)
    assert max(zs.values()) > Z_REJECT, f"Gaussian vs orthogonal not rejected: {zs}"
    n_layers = len(CASES[name][0]) - 1
    for init in ("gaussian", "orthogonal"):
        dense = ensembles(name, init, "dense", 101)
        off = ensembles(name, init, "projected", 202, cw_scale=(n_layers, 1.05))
        zs = comparison_z(dense, off)
        assert zs[(n_layers, "K")] > Z_REJECT, f"5% C_W error not rejected ({init}): {zs}"


@pytest.mark.parametrize("method", ["projected", "dense"])
def test_float32_matches_float64(ensembles, method):
    """Same seed, forward arithmetic in float32 vs float64 (accumulation is float64 in
    both): the same networks, so the estimates agree to far below their error bars;
    and an independent float32 run agrees by z-scores."""
    name, init = "grow-shrink-repeated", "gaussian"
    ref = ensembles(name, init, method, 303)
    f32 = ensembles(name, init, method, 303, dtype=np.float32)
    assert f32.dtype == np.float32 and ref.dtype == np.float64
    for layer in range(1, ref.n_layers + 1):
        for (label, a), (_, b) in zip(observables(ref, layer), observables(f32, layer)):
            scale = np.max(np.abs(a.value))
            diff = np.max(np.abs(a.value - b.value))
            assert diff < 1e-4 * scale, f"layer {layer} {label}: float32 differs by {diff}"
            assert diff < 0.05 * np.max(a.error), f"layer {layer} {label}: {diff}"
            np.testing.assert_allclose(b.error, a.error, rtol=1e-2, atol=1e-6 * scale)
    other = ensembles(name, init, method, 404, dtype=np.float32)
    zs = comparison_z(ref, other)
    assert max(zs.values()) < Z_PASS, zs


def test_float32_preactivations_are_float32_and_close():
    widths, x, act, cw, cb = CASES["grow-shrink-repeated"]
    net = nf.Network(widths, activation=act, init="orthogonal", cw=cw, cb=cb)
    for method in ("projected", "dense"):
        z64 = nf.preactivations(net, x, 50, seed=5, method=method)
        z32 = nf.preactivations(net, x, 50, seed=5, method=method, dtype=np.float32)
        for a, b in zip(z64, z32):
            assert a.dtype == np.float64 and b.dtype == np.float32
            assert a.shape == b.shape
            np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)
            assert np.any(b != a)  # really computed in single precision
