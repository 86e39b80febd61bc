"""Compiled kernels and the public API against the plain-NumPy reference (tests/reference.py).

Everything here is deterministic (fixed seeds) and compares to rounding, not statistically:
the reference reproduces the exact random-number layout, QR sign convention, stream ids and
estimators, so any change of convention, normalisation or estimator shows up as a mismatch.
"""

import itertools
import math

import numba
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.kernels.cpu import rng
from nnft_fast.run import EnsembleRun

from . import reference as ref

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

BIG_SEED = 2**40 + 12345  # both key words non-zero
BIG_NETWORK = 2**33 + 7  # both network counter words non-zero


def assert_close_scaled(actual, expected, rtol=1e-9, scale_tol=1e-11, err_msg="", scale=None):
    """allclose with an absolute tolerance ``scale_tol * scale``, scale defaulting to the
    largest |expected| entry (cancellation makes tiny entries meaningless at relative
    precision)."""
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if scale is None:
        scale = np.max(np.abs(expected)) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=scale_tol * scale, err_msg=err_msg)


def make_inputs(batch, n0, seed=1234, repeat=None):
    """Generic inputs (B, n_0); ``repeat=(i, j)`` makes input j a copy of input i."""
    x = np.random.default_rng(seed).standard_normal((batch, n0))
    if repeat is not None:
        x[repeat[1]] = x[repeat[0]]
    return x


# ---------------------------------------------------------------------------------------
# Philox4x32-10 known-answer vectors (Random123 kat_vectors)
# ---------------------------------------------------------------------------------------

PHILOX_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize("ctr,key,expected", PHILOX_KAT)
def test_philox_kernel_known_answers(ctr, key, expected):
    out = rng.philox4x32(*(np.uint64(c) for c in ctr), *(np.uint64(k) for k in key))
    assert tuple(int(v) for v in out) == expected


@pytest.mark.parametrize("ctr,key,expected", PHILOX_KAT)
def test_philox_reference_known_answers(ctr, key, expected):
    out = ref.philox4x32(np.array(ctr, np.uint64), np.array(key, np.uint64))
    assert out.dtype == np.uint32
    assert tuple(int(v) for v in out) == expected


def test_philox_reference_vectorised_matches_kernel():
    """Batched reference (broadcast key) against the scalar kernel on random counters."""
    gen = np.random.default_rng(5)
    ctr = gen.integers(0, 2**32, size=(16, 4), dtype=np.uint64)
    key = gen.integers(0, 2**32, size=2, dtype=np.uint64)
    out = ref.philox4x32(ctr, key)
    for row, words in zip(ctr, out):
        kern = rng.philox4x32(*(np.uint64(c) for c in row), np.uint64(key[0]), np.uint64(key[1]))
        assert tuple(int(v) for v in kern) == tuple(int(v) for v in words)


# ---------------------------------------------------------------------------------------
# Stream fills
# ---------------------------------------------------------------------------------------

STREAM_CASES = [
    (0, 0, 0),
    (7, 3, 9),
    (BIG_SEED, 5, 17),
    (3, BIG_NETWORK, 8),
    (BIG_SEED, BIG_NETWORK, 2),
    (2**64 - 1, 2**63 - 1, 0xFFFFFFFF),
]
LENGTHS = [1, 2, 3, 4, 5, 6, 7, 13, 64, 257]


@pytest.mark.parametrize("seed,network,stream", STREAM_CASES)
def test_fill_normal_matches_reference(seed, network, stream):
    for m in LENGTHS:
        for scale in (1.0, 0.37):
            out = np.empty(m)
            rng.fill_normal(out, np.uint64(seed), np.int64(network), np.uint64(stream), scale)
            expected = scale * ref.normals(seed, network, stream, m)
            np.testing.assert_allclose(
                out, expected, rtol=1e-12, atol=1e-12, err_msg=f"m={m} scale={scale}"
            )


@pytest.mark.parametrize("seed,network,stream", STREAM_CASES)
def test_fill_uniform_matches_reference(seed, network, stream):
    for m in LENGTHS:
        for low, high in ((0.0, 1.0), (-0.8, 0.8), (2.0, 5.5)):
            out = np.empty(m)
            rng.fill_uniform(out, np.uint64(seed), np.int64(network), np.uint64(stream), low, high)
            expected = low + (high - low) * ref.uniforms(seed, network, stream, m)
            np.testing.assert_allclose(
                out, expected, rtol=1e-12, atol=1e-12, err_msg=f"m={m} low={low} high={high}"
            )


def test_stream_prefix_property():
    """A shorter fill is a prefix of a longer one (lane m % 4 of block m // 4)."""
    long = np.empty(23)
    rng.fill_normal(long, np.uint64(9), np.int64(4), np.uint64(3), 1.0)
    for m in (1, 3, 5, 10, 22):
        short = np.empty(m)
        rng.fill_normal(short, np.uint64(9), np.int64(4), np.uint64(3), 1.0)
        np.testing.assert_allclose(short, long[:m], rtol=1e-13, atol=1e-13)


def test_reference_normals_are_standard():
    """Sanity of the reference generator itself (mean 0, variance 1, kurtosis 3)."""
    g = ref.normals(2024, 1, 0, 200_000)
    assert abs(g.mean()) < 5 * math.sqrt(1 / g.size)
    assert abs(g.var() - 1.0) < 5 * math.sqrt(2 / g.size)
    assert abs(np.mean(g**4) - 3.0) < 5 * math.sqrt(96 / g.size)
    u = ref.uniforms(2024, 1, 0, 100_001)
    assert 0.0 < u.min() and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / u.size)


# ---------------------------------------------------------------------------------------
# Householder QR and Haar matrices
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 4), (4, 4), (3, 7), (5, 1), (1, 3)])
def test_reference_householder_is_a_qr(shape):
    a = np.random.default_rng(1).standard_normal(shape)
    q, r = ref.householder_qr(a)
    k = min(shape)
    assert q.shape == (shape[0], k) and r.shape == (k, shape[1])
    np.testing.assert_allclose(q @ r, a, atol=1e-13)
    np.testing.assert_allclose(q.T @ q, np.eye(k), atol=1e-13)
    assert np.all(np.tril(r, -1) == 0.0)
    # Convention: alpha = -sign(x0) * norm, so R_00 has the sign opposite to a_00.
    assert np.sign(r[0, 0]) == -np.sign(a[0, 0])
    # Same R as LAPACK up to row signs.
    r_np = np.linalg.qr(a, mode="reduced")[1]
    np.testing.assert_allclose(np.abs(r), np.abs(r_np), atol=1e-12)


def test_reference_householder_zero_column():
    """A zero sub-column leaves H_j = I with R_jj = x0 (= 0), as in the kernel."""
    a = np.array([[1.0, 0.0, 2.0], [2.0, 0.0, -1.0], [0.5, 0.0, 3.0]])
    q, r = ref.householder_qr(a)
    np.testing.assert_allclose(q @ r, a, atol=1e-14)
    assert r[1, 1] == 0.0


def test_reference_qr_ambiguity_detection():
    """Generic matrices are unambiguous; ReLU-like exact zeros that force cancellations
    are flagged; a dead (zero) column is deterministic; a dependent column followed by
    others makes R indeterminate, a trailing one does not."""
    gen = np.random.default_rng(4)
    generic = gen.standard_normal((6, 3))
    assert not ref.qr_sign_ambiguous(generic).any()
    assert not ref.qr_indeterminate(generic)
    # Column 0 has one non-zero entry (row 2): the pivot of step 2 is an exact
    # cancellation in exact arithmetic, its sign rounding noise.
    relu_like = np.array(
        [
            [0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0],
            [0.337, 2.701, 0.0],
            [0.0, 2.823, 1.212],
            [0.0, 0.0, 0.0],
            [0.0, 0.855, 0.620],
        ]
    )
    assert list(ref.qr_sign_ambiguous(relu_like)) == [False, False, True]
    assert not ref.qr_indeterminate(relu_like)
    dead = generic.copy()
    dead[:, 1] = 0.0
    assert not ref.qr_indeterminate(dead)
    dependent = generic.copy()
    dependent[:, 1] = 2.0 * dependent[:, 0]
    assert ref.qr_indeterminate(dependent)
    trailing = generic.copy()
    trailing[:, 2] = trailing[:, 0]
    assert not ref.qr_indeterminate(trailing)


@pytest.mark.parametrize("n_rows,n_cols", [(5, 5), (7, 3), (3, 7), (6, 1), (1, 4), (1, 1)])
def test_haar_orthogonal_matches_reference(n_rows, n_cols):
    size, seed = 4, 31
    out = nf.haar_orthogonal(n_rows, n_cols, size, seed)
    assert out.shape == (size, n_rows, n_cols)
    for t in range(size):
        expected = ref.haar_matrix(n_rows, n_cols, seed, t, 0)
        np.testing.assert_allclose(out[t], expected, rtol=1e-11, atol=1e-12)
        small = min(n_rows, n_cols)
        gram = out[t].T @ out[t] if n_rows >= n_cols else out[t] @ out[t].T
        np.testing.assert_allclose(gram, np.eye(small), atol=1e-13)


def test_haar_orthogonal_first_and_big_seed():
    out = nf.haar_orthogonal(4, 3, 2, BIG_SEED, first=BIG_NETWORK)
    for t in range(2):
        np.testing.assert_allclose(
            out[t], ref.haar_matrix(4, 3, BIG_SEED, BIG_NETWORK + t), rtol=1e-11, atol=1e-12
        )


def test_reference_haar_frame_has_positive_r():
    """Q * sign(diag R) is the Q of the QR with positive diagonal (Mezzadri)."""
    g = np.random.default_rng(3).standard_normal((6, 4))
    frame = ref.haar_frame(g)
    r_pos = frame.T @ g
    np.testing.assert_allclose(np.tril(r_pos, -1), 0.0, atol=1e-13)
    assert np.all(np.diag(r_pos) > 0)


# ---------------------------------------------------------------------------------------
# Forward passes: nf.preactivations against the reference
# ---------------------------------------------------------------------------------------

# (method, init, activation, widths, cw, cb, batch, repeat)
FORWARD_CASES = [
    # dense, all three laws, growing and shrinking widths
    ("dense", "gaussian", "relu", (4, 7, 3, 5), 2.0, 0.0, 3, None),
    ("dense", "orthogonal", "relu", (4, 7, 3, 5), 2.0, 0.3, 3, None),
    ("dense", "uniform", "relu", (4, 7, 3, 5), 2.0, (0.1, 0.0, 0.2), 3, None),
    ("dense", "gaussian", "tanh", (5, 4, 8), (1.5, 0.8), 0.5, 2, None),
    ("dense", "orthogonal", "tanh", (6, 2, 8, 3), 1.3, 0.0, 4, None),
    ("dense", "uniform", "tanh", (3, 9, 2), 1.0, 0.25, 5, None),
    ("dense", "orthogonal", "erf", (5, 5, 5), 1.7, 0.1, 2, None),
    # projected: B <= n, growing / shrinking, bias on / off
    ("projected", "gaussian", "relu", (4, 8, 6, 9), 2.0, 0.0, 3, None),
    ("projected", "orthogonal", "relu", (4, 8, 6, 9), 2.0, 0.2, 3, None),
    ("projected", "orthogonal", "relu", (7, 5, 10, 4), (1.0, 2.0, 3.0), 0.0, 2, None),
    ("projected", "gaussian", "tanh", (5, 6, 3), (1.2, 0.7), (0.0, 0.4), 3, None),
    ("projected", "orthogonal", "erf", (3, 4, 4), 1.5, 0.0, 1, None),
    ("projected", "gaussian", "linear", (6, 3, 5), 1.0, 0.0, 2, None),
    # projected, rank-deficient: B > n_l (k = min(n_in, B) reflectors)
    ("projected", "gaussian", "tanh", (3, 2, 5, 2), 1.0, 0.0, 5, None),
    ("projected", "orthogonal", "tanh", (3, 2, 5, 2), 1.4, 0.3, 5, None),
    ("projected", "orthogonal", "relu", (2, 6, 8), 2.0, 0.0, 4, None),
    # projected, repeated inputs (trailing duplicate: the QR is unique up to rounding)
    ("projected", "gaussian", "relu", (4, 8, 6), 2.0, 0.0, 3, (0, 2)),
    ("projected", "orthogonal", "relu", (4, 8, 6), 2.0, 0.1, 3, (0, 2)),
    ("dense", "orthogonal", "relu", (4, 8, 6), 2.0, 0.0, 3, (1, 2)),
]


def _case_id(case):
    method, init, act, widths, _, cb, batch, repeat = case
    bias = "bias" if np.any(np.asarray(cb) > 0) else "nobias"
    rep = "-repeat" if repeat else ""
    return f"{method}-{init}-{act}-{'x'.join(map(str, widths))}-B{batch}-{bias}{rep}"


def _check_projected_layerwise(zs, t, case, x, seed, network, rtol, scale_tol, amb_rtol):
    """Layer by layer, fed with the kernel's own previous layer: z^(l) = F R + b exactly,
    except that the rows of R from the first sign-ambiguous QR step on (see
    ``reference.qr_sign_ambiguous``) may carry any signs (equally exact). Layers whose R
    is indeterminate (``reference.qr_indeterminate``) are skipped. Returns the number of
    layers checked."""
    _, init, act, widths, cw, cb, _, _ = case
    n_layers = len(widths) - 1
    cw, cb = ref.per_layer(cw, n_layers), ref.per_layer(cb, n_layers)
    s = np.asarray(x, dtype=np.float64).T
    checked = 0
    for layer in range(1, n_layers + 1):
        z = np.asarray(zs[layer - 1][t], dtype=np.float64)
        if ref.qr_indeterminate(s, amb_rtol):
            s = ref.ACTIVATIONS[act](z)
            continue
        checked += 1
        f, r, b = ref.projected_layer(
            s, init, cw[layer - 1], cb[layer - 1], widths[layer], seed, network, layer
        )
        amb = ref.qr_sign_ambiguous(s, amb_rtol)
        k = amb.size
        free_from = int(np.argmax(amb)) if amb.any() else k
        best = None
        for signs in itertools.product((1.0, -1.0), repeat=k - free_from):
            d = np.concatenate([np.ones(free_from), signs])
            cand = (f * d) @ r + b[:, None]
            dev = np.max(np.abs(cand - z))
            if best is None or dev < best[0]:
                best = (dev, cand)
        assert_close_scaled(
            z,
            best[1],
            rtol=rtol,
            scale_tol=scale_tol,
            err_msg=f"network {network}, layer {layer} (teacher-forced)",
        )
        s = ref.ACTIVATIONS[act](z)
    return checked


def _check_forward(case, seed, first, n_networks=4, dtype=np.float64, rtol=1e-9, scale_tol=1e-11):
    method, init, act, widths, cw, cb, batch, repeat = case
    net = nf.Network(widths, act, init, cw=cw, cb=cb)
    x = make_inputs(batch, widths[0], repeat=repeat)
    zs = nf.preactivations(
        net, x, n_networks, seed, method=method, dtype=dtype, first_network=first
    )
    assert len(zs) == len(widths) - 1
    amb_rtol = 1e-9 if np.dtype(dtype) == np.float64 else 1e-4
    checked = 0
    for t in range(n_networks):
        e = first + t
        if method == "dense":
            expected, ambiguous = (
                ref.dense_forward(widths, ref.ACTIVATIONS[act], init, cw, cb, x, seed, e),
                False,
            )
        else:
            expected, ambiguous = ref.projected_forward(
                widths, ref.ACTIVATIONS[act], init, cw, cb, x, seed, e, return_ambiguous=True
            )
            checked += _check_projected_layerwise(
                zs, t, case, x, seed, e, rtol, scale_tol, amb_rtol
            )
        for layer, (z, ez) in enumerate(zip(zs, expected), start=1):
            assert z.shape == (n_networks, widths[layer], batch)
            assert z.dtype == np.dtype(dtype)
            if not ambiguous:
                assert_close_scaled(
                    z[t], ez, rtol=rtol, scale_tol=scale_tol, err_msg=f"network {e}, layer {layer}"
                )
    if repeat is not None:
        i, j = repeat
        for z in zs:
            assert_close_scaled(z[..., i], z[..., j], rtol=1e-10, scale_tol=1e-12)
    return checked


@pytest.mark.parametrize("case", FORWARD_CASES, ids=_case_id)
def test_preactivations_match_reference(case):
    _check_forward(case, seed=97, first=0)


@pytest.mark.parametrize(
    "case", [FORWARD_CASES[1], FORWARD_CASES[9], FORWARD_CASES[14]], ids=_case_id
)
def test_preactivations_big_seed_and_network_index(case):
    _check_forward(case, seed=BIG_SEED, first=BIG_NETWORK, n_networks=2)


# Narrow ReLU layers: dead neurons (zero rows), dead inputs (zero columns), columns with a
# single non-zero entry (exact cancellations in the QR) and rank-deficient S.
DEAD_RELU_CASES = [
    ("projected", "gaussian", "relu", (3, 3, 3, 3), 2.0, 0.0, 3, None),
    ("projected", "orthogonal", "relu", (5, 4, 4, 4, 4), 2.0, 0.0, 4, None),
    ("projected", "gaussian", "relu", (4, 2, 5, 3), 2.0, 0.1, 5, None),
]


@pytest.mark.parametrize("case", DEAD_RELU_CASES, ids=_case_id)
def test_preactivations_dead_relu_match_reference(case):
    n_networks = 40
    checked = _check_forward(case, seed=2, first=0, n_networks=n_networks)
    # Only layers whose QR is indeterminate (rank-deficient S) are left unchecked.
    assert checked >= 0.6 * n_networks * (len(case[3]) - 1)


def test_preactivations_largest_seed():
    case = FORWARD_CASES[2]
    _check_forward(case, seed=2**64 - 1, first=2**63 - 3, n_networks=2)


def test_network_indices_beyond_int64_are_refused():
    """Kernels index networks with int64: indices >= 2^63 are a clear error, never a wrap."""
    net = nf.Network((3, 4))
    with pytest.raises(ValueError, match="first_network"):
        nf.preactivations(net, np.ones((1, 3)), 1, 0, first_network=2**63)
    with pytest.raises(ValueError, match="below 2\\^63"):
        nf.sample(net, np.ones((1, 3)), 10, 0, first_network=2**63 - 5)
    with pytest.raises(ValueError, match="first"):
        nf.haar_orthogonal(3, 3, 1, 0, first=2**63)


@pytest.mark.parametrize(
    "case", [FORWARD_CASES[0], FORWARD_CASES[4], FORWARD_CASES[8], FORWARD_CASES[13]], ids=_case_id
)
def test_preactivations_float32_match_reference(case):
    _check_forward(case, seed=5, first=3, dtype=np.float32, rtol=2e-4, scale_tol=2e-5)


def test_reference_first_layer_variance_linear_gaussian():
    """Sanity: B = 1, linear, Gaussian: both paths give N(0, cw|x|^2/n_0) first-layer
    preactivations with the same second moment (checked on the reference itself)."""
    widths, x = (5, 300), make_inputs(1, 5)
    z_d = ref.dense_forward(widths, ref.ACTIVATIONS["linear"], "gaussian", 2.0, 0.0, x, 1, 0)
    z_p = ref.projected_forward(widths, ref.ACTIVATIONS["linear"], "gaussian", 2.0, 0.0, x, 1, 0)
    k_exact = 2.0 * float(x[0] @ x[0]) / 5
    for z in (z_d[0], z_p[0]):
        assert abs(np.mean(z**2) / k_exact - 1.0) < 5 * math.sqrt(2 / 300)


# ---------------------------------------------------------------------------------------
# Estimators: nf.sample against reference.moment_estimates on the same samples
# ---------------------------------------------------------------------------------------


def _compare_ensemble(ens, samples, widths, first, rtol=1e-9, err_rtol=1e-7):
    """Every estimate (value and jackknife error) of ``ens`` against the reference."""
    for layer in range(1, len(widths)):
        expected = ref.moment_estimates(
            samples[layer - 1], widths[layer - 1], n_blocks=ens.accumulator.n_blocks, first=first
        )
        got = {
            "two_point": ens.two_point(layer),
            "same_raw": ens.four_point(layer, connected=False, neurons="same"),
            "distinct_raw": ens.four_point(layer, connected=False, neurons="distinct"),
            "same_connected": ens.four_point(layer, connected=True, neurons="same"),
            "distinct_connected": ens.four_point(layer, connected=True, neurons="distinct"),
            "vertex": ens.vertex(layer),
        }
        for name in ref.MOMENT_NAMES:
            value, error = expected[name]
            msg = f"layer {layer} {name}"
            assert_close_scaled(
                got[name].value, value, rtol=rtol, scale_tol=1e-11, err_msg=msg + " value"
            )
            # An error bar is known only to the rounding of the values it describes.
            assert_close_scaled(
                got[name].error,
                error,
                rtol=err_rtol,
                scale_tol=1e-11,
                scale=np.max(np.abs(value)),
                err_msg=msg + " error",
            )


# (method, init, activation, widths, cw, cb, batch, n_networks, first_network, dtype)
SAMPLE_CASES = [
    ("projected", "gaussian", "relu", (3, 8, 6), 2.0, 0.0, 2, 300, 0, np.float64),
    ("projected", "orthogonal", "tanh", (4, 5, 7), 1.5, 0.2, 3, 200, 1000, np.float64),
    ("dense", "orthogonal", "relu", (3, 6, 4), 2.0, 0.1, 2, 150, 77, np.float64),
    ("projected", "gaussian", "relu", (3, 8, 6), 2.0, 0.0, 2, 200, 5, np.float32),
]


@pytest.mark.parametrize(
    "case", SAMPLE_CASES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}-first{c[8]}-{np.dtype(c[9])}"
)
def test_sample_estimates_match_reference(case):
    method, init, act, widths, cw, cb, batch, n_networks, first, dtype = case
    net = nf.Network(widths, act, init, cw=cw, cb=cb)
    x = make_inputs(batch, widths[0], seed=8)
    seed = 4242
    ens = nf.sample(net, x, n_networks, seed, method=method, dtype=dtype, first_network=first)
    assert ens.n_networks == n_networks
    samples = nf.preactivations(
        net, x, n_networks, seed, method=method, dtype=dtype, first_network=first
    )
    _compare_ensemble(ens, samples, widths, first)


def test_sample_two_point_only_matches_reference():
    widths = (3, 8, 6)
    net = nf.Network(widths, "relu", "gaussian", cw=2.0)
    x = make_inputs(2, 3, seed=8)
    ens = nf.sample(net, x, 130, 11, observables="two_point")
    samples = nf.preactivations(net, x, 130, 11)
    for layer in (1, 2):
        value, error = ref.moment_estimates(samples[layer - 1], widths[layer - 1])["two_point"]
        est = ens.two_point(layer)
        assert_close_scaled(est.value, value)
        assert_close_scaled(est.error, error, rtol=1e-7, scale_tol=1e-9)


def test_reference_estimators_match_explicit_loops():
    """The reference's vectorised estimators against literal double loops over network
    pairs e != f and neuron pairs i != j (small N, n, B)."""
    gen = np.random.default_rng(0)
    n_net, n, nb = 6, 3, 2
    z = gen.standard_normal((n_net, n, nb)) + 0.3
    est = ref.estimates_from_statistics(*ref.per_network_statistics(z), n, fan_in=5)
    k = np.zeros((nb, nb))
    same = np.zeros((nb,) * 4)
    dist = np.zeros((nb,) * 4)
    kk = np.zeros((nb,) * 4)
    for e in range(n_net):
        k += z[e].T @ z[e] / (n * n_net)
        for a, b, c, d in np.ndindex(*(nb,) * 4):
            same[a, b, c, d] += sum(
                z[e, i, a] * z[e, i, b] * z[e, i, c] * z[e, i, d] for i in range(n)
            ) / (n * n_net)
            dist[a, b, c, d] += sum(
                z[e, i, a] * z[e, i, b] * z[e, j, c] * z[e, j, d]
                for i in range(n)
                for j in range(n)
                if i != j
            ) / (n * (n - 1) * n_net)
            for f in range(n_net):
                if f != e:
                    kk[a, b, c, d] += (
                        (z[e, :, a] @ z[e, :, b])
                        * (z[f, :, c] @ z[f, :, d])
                        / (n * n * n_net * (n_net - 1))
                    )
    wick = kk + kk.transpose(0, 2, 1, 3) + kk.transpose(0, 2, 3, 1)
    np.testing.assert_allclose(est["two_point"], k, rtol=1e-12)
    np.testing.assert_allclose(est["same_raw"], same, rtol=1e-12)
    np.testing.assert_allclose(est["distinct_raw"], dist, rtol=1e-12)
    np.testing.assert_allclose(est["distinct_connected"], dist - kk, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(est["same_connected"], same - wick, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(est["vertex"], 5 * (dist - kk), rtol=1e-10, atol=1e-13)
    # The Wick term is symmetric under every permutation of the four indices it pairs.
    for perm in ((1, 0, 2, 3), (2, 3, 0, 1), (0, 2, 1, 3), (3, 2, 1, 0)):
        np.testing.assert_allclose(wick, wick.transpose(perm), rtol=1e-12)


def test_reference_jackknife_of_mean_is_standard_error():
    """For K (a plain mean) with one network per block, the delete-one jackknife error
    equals the usual standard error of the mean, s / sqrt(N)."""
    gen = np.random.default_rng(1)
    z = gen.standard_normal((40, 3, 1))
    value, error = ref.moment_estimates(z, 3, n_blocks=64)["two_point"]
    g = np.einsum("eia,eia->e", z, z) / 3
    np.testing.assert_allclose(value[0, 0], g.mean(), rtol=1e-13)
    np.testing.assert_allclose(error[0, 0], g.std(ddof=1) / math.sqrt(g.size), rtol=1e-10)


# ---------------------------------------------------------------------------------------
# Properties: merging, batch size and thread count
# ---------------------------------------------------------------------------------------

PROP_NET = dict(widths=(3, 6, 5), activation="relu", init="gaussian", cw=2.0, cb=0.0)
PROP_SEED = 606


def _prop_network():
    return nf.Network(**PROP_NET)


def _prop_inputs():
    return make_inputs(2, 3, seed=21)


def _assert_ensembles_close(a, b, rtol=1e-11):
    assert a.n_networks == b.n_networks
    np.testing.assert_array_equal(a.accumulator.block_counts, b.accumulator.block_counts)
    np.testing.assert_allclose(
        a.accumulator.block_sums, b.accumulator.block_sums, rtol=rtol, atol=0
    )
    for layer in range(1, a.n_layers + 1):
        for fa, fb in (
            (a.two_point(layer), b.two_point(layer)),
            (a.four_point(layer), b.four_point(layer)),
            (a.four_point(layer, neurons="same"), b.four_point(layer, neurons="same")),
            (a.vertex(layer), b.vertex(layer)),
        ):
            assert_close_scaled(fa.value, fb.value, rtol=1e-10, scale_tol=1e-12)
            assert_close_scaled(
                fa.error, fb.error, rtol=1e-8, scale_tol=1e-12, scale=np.max(np.abs(fb.value))
            )


@pytest.mark.parametrize("n_a,n_b", [(150, 133), (64, 64), (2, 200)])
def test_merge_of_disjoint_ranges_equals_one_pass(n_a, n_b):
    net, x = _prop_network(), _prop_inputs()
    whole = nf.sample(net, x, n_a + n_b, PROP_SEED)
    ens_a = nf.sample(net, x, n_a, PROP_SEED)
    ens_b = nf.sample(net, x, n_b, PROP_SEED, first_network=n_a)
    merged = ens_a.merge(ens_b)
    assert merged.first_network == 0
    _assert_ensembles_close(merged, whole)
    _assert_ensembles_close(ens_b.merge(ens_a), whole)


def test_merge_three_way_with_offset_start():
    net, x = _prop_network(), _prop_inputs()
    first = 1000
    whole = nf.sample(net, x, 300, PROP_SEED, first_network=first)
    parts = [
        nf.sample(net, x, n, PROP_SEED, first_network=first + start)
        for start, n in ((0, 97), (97, 101), (198, 102))
    ]
    merged = parts[2].merge(parts[0]).merge(parts[1])
    assert merged.first_network == first
    _assert_ensembles_close(merged, whole)


def test_merged_estimates_match_reference():
    """A merged ensemble is the reference estimate of the union of its samples."""
    net, x = _prop_network(), _prop_inputs()
    ens = nf.sample(net, x, 90, PROP_SEED, first_network=10).merge(
        nf.sample(net, x, 110, PROP_SEED, first_network=100)
    )
    samples = nf.preactivations(net, x, 200, PROP_SEED, first_network=10)
    _compare_ensemble(ens, samples, PROP_NET["widths"], first=10)


@pytest.mark.parametrize("method", ["projected", "dense"])
def test_block_sums_bit_identical_across_batch_sizes(method):
    net, x = _prop_network(), _prop_inputs()
    runs = [
        nf.sample(net, x, 203, PROP_SEED, method=method, batch_size=bs, first_network=5)
        for bs in (1, 7, None, 203)
    ]
    for other in runs[1:]:
        assert np.array_equal(runs[0].accumulator.block_sums, other.accumulator.block_sums)
        assert np.array_equal(runs[0].accumulator.block_counts, other.accumulator.block_counts)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs >= 2 Numba threads")
@pytest.mark.parametrize("method", ["projected", "dense"])
def test_block_sums_bit_identical_across_thread_counts(method):
    net, x = _prop_network(), _prop_inputs()
    one = nf.sample(net, x, 203, PROP_SEED, method=method, threads=1, batch_size=50)
    two = nf.sample(net, x, 203, PROP_SEED, method=method, threads=2, batch_size=50)
    assert np.array_equal(one.accumulator.block_sums, two.accumulator.block_sums)
    assert np.array_equal(one.accumulator.block_counts, two.accumulator.block_counts)
    z1 = nf.preactivations(net, x, 31, PROP_SEED, method=method, threads=1)
    z2 = nf.preactivations(net, x, 31, PROP_SEED, method=method, threads=2)
    for a, b in zip(z1, z2):
        assert np.array_equal(a, b)


def test_preactivations_independent_of_range_split():
    """Network e is a function of (seed, e) only: slices of one call equal other calls."""
    net, x = _prop_network(), _prop_inputs()
    whole = nf.preactivations(net, x, 20, PROP_SEED, first_network=3)
    part = nf.preactivations(net, x, 6, PROP_SEED, first_network=10)
    for a, b in zip(whole, part):
        assert np.array_equal(a[7:13], b)


@pytest.mark.parametrize(
    "observables", [("two_point", "four_point"), ("two_point", "four_point", "ntk")]
)
@pytest.mark.parametrize("method", ["projected", "dense"])
def test_statistics_independent_of_heap_layout(method, observables):
    """Bit-identical per-network statistics whatever the addresses of the kernels' scratch
    buffers (a loop that both stores and sums once took a runtime-aliasing fallback that
    summed in another order, so results moved by an ulp with the heap state)."""
    net = nf.Network((3, 6, 5), "tanh", "gaussian", 1.5, 0.1)
    x = np.array([[1.0, 0.5, -0.5], [0.2, -1.0, 0.3]])
    run = EnsembleRun(net, x, 2, method=method, observables=observables, backend="cpu")
    stats, _, ntk_stats = run.compute(0, 6)
    keep = []
    for size in np.random.default_rng(0).integers(1, 50, size=30):
        keep.append(np.empty(size))  # shift the heap under the next call's buffers
        again, _, ntk_again = run.compute(0, 6)
        assert np.array_equal(again, stats)
        if ntk_stats is not None:
            assert np.array_equal(ntk_again, ntk_stats)
