"""Numerics at the edges of the floating-point range.

The projected sampler's Householder QR scales columns of extreme magnitude by powers of
two (``kernels/cpu/haar.py``), so it is exact wherever the preactivations themselves are
representable: inputs 2^e x ordinary ones give 2^e x the ordinary preactivations, bit
for bit, and float32 follows float64 until float32's own range ends. Networks that do
overflow are counted per layer (``Ensemble.nonfinite``) and every estimate that includes
them warns (``nf.NonFiniteWarning``).
"""

import warnings

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.accumulators import MomentAccumulator
from nnft_fast.kernels.cpu.haar import extract_r, form_q, householder_factor, sign_fix

X = np.array(
    [[0.8, -0.5, 1.1, 0.3, -0.9], [-0.2, 1.0, 0.4, -1.2, 0.6], [0.8, -0.5, 1.1, 0.3, -0.9]]
)  # repeated input: rank(S) = 2
DEEP_LAYERS = 120
DEEP_NETWORKS = 16
FLOAT32_MAX = float(np.finfo(np.float32).max)


def canonical_qr(a):
    """(sign-fixed Q, canonical R) of ``a`` by the kernels; ``a`` is left as it is."""
    m, n = a.shape
    k = min(m, n)
    factored = np.asfortranarray(a.copy())
    beta, rdiag = np.empty(k, a.dtype), np.empty(k, a.dtype)
    householder_factor(factored, beta, rdiag)
    q, r = np.empty((m, k), a.dtype), np.empty((k, n), a.dtype)
    form_q(factored, beta, q)
    sign_fix(q, rdiag)
    extract_r(factored, rdiag, r)
    return q, r


@pytest.mark.parametrize(
    "dtype, exponents",
    [
        (np.float64, (900, 900, 900)),
        (np.float64, (-900, -900, -900)),
        (np.float64, (900, 0, -900)),
        (np.float32, (90, 90, 90)),
        (np.float32, (-90, -90, -90)),
        (np.float32, (90, 0, -90)),
    ],
)
@pytest.mark.parametrize("shape", [(9, 3), (2, 3)])
def test_qr_of_extreme_columns_is_the_scaled_qr(dtype, exponents, shape):
    """A D (D = diag(2^e_c), squares out of range) has the QR factors Q and R D of A,
    bit for bit: Q orthonormal, R the canonical R of A with its columns scaled. A tall
    matrix with a repeated column (rank 2) and a wide one (columns beyond k)."""
    a = np.random.default_rng(5).normal(size=shape).astype(dtype)
    if shape[0] > shape[1]:
        a[:, 2] = a[:, 0]
    scaled = np.ldexp(a, np.array(exponents)[None, :])
    q, r = canonical_qr(a)
    q_scaled, r_scaled = canonical_qr(scaled)
    assert np.all(np.isfinite(r_scaled)) and np.all(np.diag(r_scaled)[:2] > 0.0)
    assert np.array_equal(q_scaled, q)
    assert np.array_equal(r_scaled, np.ldexp(r, np.array(exponents)[None, :]))
    eps = np.finfo(dtype).eps
    assert np.max(np.abs(q.T @ q - np.eye(q.shape[1]))) < 10 * eps
    assert np.allclose(q @ r, a, rtol=0, atol=10 * eps * np.abs(a).max())


@pytest.mark.parametrize(
    "dtype, e", [(np.float32, 67), (np.float32, -67), (np.float64, 530), (np.float64, -530)]
)
@pytest.mark.parametrize(
    "widths, init, method",
    [
        ((5, 12, 7, 9), "gaussian", "projected"),
        ((5, 2, 9), "gaussian", "projected"),
        ((5, 7, 4, 9), "orthogonal", "projected"),
        ((5, 12, 7, 9), "gaussian", "dense"),
    ],
)
def test_preactivations_of_scaled_inputs_scale_exactly(dtype, e, widths, init, method):
    """ReLU without biases is positively homogeneous: inputs 2^e X (|x|^2 over- or
    underflows) give 2^e times the preactivations of X, bit for bit, at every layer,
    never 0 or NaN (the dense path is the control)."""
    net = nf.Network(widths, "relu", init, 2.0, 0.0)
    ordinary = nf.preactivations(net, X, 4, seed=1, method=method, dtype=dtype)
    scaled = nf.preactivations(net, X * 2.0**e, 4, seed=1, method=method, dtype=dtype)
    for got, ref in zip(scaled, ordinary):
        assert np.any(ref != 0.0)
        np.testing.assert_array_equal(got, np.ldexp(ref, e))


@pytest.mark.parametrize(
    "dtype, n0, scale",
    [
        (np.float32, 5, 1e20),
        (np.float32, 5, 1e-20),
        (np.float64, 1000, 1e153),  # |x|^2 ~ 1e309 overflows, K ~ 1e306 does not
        (np.float64, 5, 1e-155),
    ],
)  # squares and K subnormal
@pytest.mark.parametrize("method", ["projected", "dense"])
def test_two_point_at_extreme_input_scales(dtype, n0, scale, method):
    """K at inputs scale * X is scale^2 times K at X (to float32 rounding of the scaled
    inputs, or to the subnormal spacing), projected and dense alike; never 0 or NaN."""
    x = np.random.default_rng(2).normal(size=(2, n0))
    net = nf.Network((n0, 20, 20), "relu", "gaussian", 2.0, 0.0)
    kw = dict(seed=4, method=method, dtype=dtype, observables=("two_point",), backend="cpu")
    ordinary = nf.sample(net, x, 8, **kw)
    scaled = nf.sample(net, x * scale, 8, **kw)
    for layer in (1, 2):
        k = ordinary.two_point(layer).value
        got = scaled.two_point(layer).value / scale / scale
        assert np.all(np.isfinite(got)) and np.all(np.diag(got) > 0)
        tol = 1e-6 if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(got, k, rtol=tol, atol=tol * np.abs(k).max())


@pytest.fixture(scope="module")
def deep_relu():
    """Deep ReLU at C_W = 10 (K grows 5x a layer; float32 overflows near layer 110):
    the float32 and float64 projected preactivations of the same networks, and the
    float32 ensemble."""
    net = nf.Network((5,) + (30,) * DEEP_LAYERS, "relu", "gaussian", 10.0, 0.0)
    x = X[:1]
    z32 = nf.preactivations(net, x, DEEP_NETWORKS, seed=2, method="projected", dtype=np.float32)
    z64 = nf.preactivations(net, x, DEEP_NETWORKS, seed=2, method="projected", dtype=np.float64)
    ens = nf.sample(
        net, x, DEEP_NETWORKS, seed=2, method="projected", dtype=np.float32, backend="cpu"
    )
    return net, x, z32, z64, ens


def test_deep_relu_float32_follows_float64_until_float32_overflows(deep_relu):
    """Each network's float32 preactivations equal its float64 ones to float32 rounding
    at every layer up to where its float64 values leave float32's range (formerly they
    became exactly 0 from layer ~52, where K passed ~1e38)."""
    _, _, z32, z64, _ = deep_relu
    in_range = np.ones(DEEP_NETWORKS, bool)
    for layer in range(DEEP_LAYERS):
        top = np.abs(z64[layer]).max(axis=(1, 2))
        in_range &= top < FLOAT32_MAX / 2
        if layer == 104:
            assert in_range.all()  # K ~ 1e72 here, far beyond the squares' old limit
        diff = np.abs(z32[layer].astype(np.float64) - z64[layer]).max(axis=(1, 2))
        assert np.all(diff[in_range] < 1e-5 * top[in_range]), layer
    assert not in_range.any()


def first_nonfinite_layers(z):
    """Per network, the first layer (1-based) with a non-finite preactivation (or L + 1)."""
    bad = np.array([~np.isfinite(zl).all(axis=(1, 2)) for zl in z])  # (L, networks)
    return np.where(bad.any(axis=0), bad.argmax(axis=0) + 1, len(z) + 1)


def test_nonfinite_networks_are_counted_and_warned(deep_relu):
    """ens.nonfinite[l-1] counts the networks non-finite at layer l or before (from the
    float32 preactivations); estimates warn from the first such layer on, not before."""
    _, _, z32, _, ens = deep_relu
    first = first_nonfinite_layers(z32)
    expected = [(first <= layer).sum() for layer in range(1, DEEP_LAYERS + 1)]
    assert np.array_equal(ens.nonfinite, expected)
    assert ens.nonfinite.dtype == np.int64 and expected[-1] > DEEP_NETWORKS // 2
    bad = int(first.min())
    assert 100 < bad <= DEEP_LAYERS
    with warnings.catch_warnings():
        warnings.simplefilter("error", nf.NonFiniteWarning)
        ens.two_point(bad - 1)
        ens.vertex(bad - 1)
    for layer in (bad, DEEP_LAYERS):
        message = rf"layer {layer}: {expected[layer - 1]} of {DEEP_NETWORKS} networks"
        with pytest.warns(nf.NonFiniteWarning, match=message):
            ens.two_point(layer)
        with pytest.warns(nf.NonFiniteWarning, match=message):
            ens.vertex(layer)


def test_merged_ensembles_add_nonfinite_counts(deep_relu):
    net, x, _, _, ens = deep_relu
    kw = dict(seed=2, method="projected", dtype=np.float32, backend="cpu")
    half = DEEP_NETWORKS // 2
    a = nf.sample(net, x, half, **kw)
    b = nf.sample(net, x, DEEP_NETWORKS - half, first_network=half, **kw)
    assert np.any(a.nonfinite != ens.nonfinite)
    assert np.array_equal(a.merge(b).nonfinite, ens.nonfinite)
    assert np.array_equal(a.merge(b).nonfinite, a.nonfinite + b.nonfinite)


def test_accumulator_state_round_trip(deep_relu):
    """state() holds block_sums, block_counts and nonfinite; load_state copies them in,
    add_state adds them, and malformed states are refused."""
    net, _, _, _, ens = deep_relu
    state = ens.accumulator.state()
    assert set(state) == {"block_sums", "block_counts", "nonfinite"}
    assert state["nonfinite"].shape == (DEEP_LAYERS,) and state["nonfinite"].dtype == np.int64
    acc = MomentAccumulator(net.widths, 1, True)
    acc.load_state(state)
    for name, array in acc.state().items():
        assert np.array_equal(array, state[name], equal_nan=True)
        assert array is not state[name]
    acc.add_state(state)
    assert np.array_equal(acc.nonfinite, 2 * state["nonfinite"])
    assert np.array_equal(acc.block_counts, 2 * state["block_counts"])
    with pytest.raises(ValueError, match="lacks nonfinite"):
        acc.load_state({k: v for k, v in state.items() if k != "nonfinite"})
    with pytest.raises(ValueError, match="shape"):
        acc.add_state(dict(state, nonfinite=state["nonfinite"][:-1]))


def test_nonfinite_estimate_of_finite_networks_warns():
    """A non-finite value from finite statistics (here 0/0 in the statistic) warns too."""
    net = nf.Network((5, 8), "tanh", "gaussian", 1.0, 0.0)
    ens = nf.sample(net, X, 4, seed=1, backend="cpu")
    assert not ens.nonfinite.any()
    with pytest.warns(nf.NonFiniteWarning, match="layer 1: the estimate is not finite"):
        ens.estimate(1, lambda m: m.two_point * 0.0 / 0.0)


def test_ntk_nonfinite_networks_are_counted_and_warned():
    """An exploding exp network: the NTK accumulator counts its non-finite networks too."""
    net = nf.Network((5, 6, 6, 6), "exp", "gaussian", 40.0, 0.0)
    ens = nf.sample(net, X[:2], 7, seed=3, observables=("two_point", "ntk"), backend="cpu")
    counts = ens.ntk_accumulator.nonfinite
    assert counts[0] == 0 and counts[-1] > 0 and np.all(np.diff(counts) >= 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", nf.NonFiniteWarning)
        ens.ntk(1)
    with pytest.warns(nf.NonFiniteWarning, match=f"layer 3: {counts[-1]} of 7 networks"):
        ens.ntk(3)
