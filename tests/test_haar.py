"""Haar-random orthogonal matrices and frames (docs/conventions.md#haar,
docs/exact-results.md#haar-moments).

Statistical checks use fixed seeds and z-scores (batch statistics over independent
matrices). Each law test is paired with negative controls that apply the SAME statistic
to QR factors WITHOUT Mezzadri's sign correction -- numpy's ``np.linalg.qr`` and the
package's own Householder kernels with the sign fix left out -- and require them to be
rejected by many sigma: a sign-convention bug in the package would fail these tests.
"""

import math

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.kernels.cpu.haar import form_q, householder_factor

Z_PASS = 4.5
Z_REJECT = 10.0


def moment_z(samples, exact):
    """z-score of the sample mean of ``samples`` (axis 0) against ``exact``."""
    samples = np.asarray(samples, dtype=np.float64)
    err = samples.std(axis=0, ddof=1) / math.sqrt(samples.shape[0])
    return (samples.mean(axis=0) - exact) / err


def gaussian_moment(k):
    """E[g^k], g ~ N(0,1): 0 for odd k, (k-1)!! for even k."""
    return 0.0 if k % 2 else float(np.prod(np.arange(k - 1, 0, -2)))


def trace_power_z(mats, kmax):
    """z-scores of E[(tr O)^k] against the N(0,1) moments, k = 1..kmax."""
    tr = np.trace(mats, axis1=-2, axis2=-1)
    return np.array([moment_z(tr**k, gaussian_moment(k)) for k in range(1, kmax + 1)])


def numpy_qr_unfixed(size, n_rows, n_cols, seed):
    """Q of numpy's QR of Gaussians, sign correction deliberately omitted (not Haar)."""
    g = np.random.default_rng(seed).standard_normal((size, n_rows, n_cols))
    return np.linalg.qr(g)[0]


def package_householder_unfixed(size, n_rows, n_cols, seed):
    """The package's own Householder QR (kernels.cpu.haar) with sign_fix left out."""
    g = np.random.default_rng(seed).standard_normal((size, n_rows, n_cols))
    k = min(n_rows, n_cols)
    out = np.empty((size, n_rows, k))
    beta = np.empty(k)
    rdiag = np.empty(k)
    for t in range(size):
        a = np.asfortranarray(g[t])
        householder_factor(a, beta, rdiag)
        form_q(a, beta, out[t])
    return out


# ------------------------------------------------------------------ orthonormality


@pytest.mark.parametrize("shape", [(8, 8), (10, 4), (4, 10), (1, 1), (6, 1), (1, 6), (33, 33)])
def test_orthonormal_to_rounding(shape):
    n_rows, n_cols = shape
    q = nf.haar_orthogonal(n_rows, n_cols, 40, seed=3)
    assert q.shape == (40, n_rows, n_cols)
    assert np.all(np.isfinite(q))
    if n_rows >= n_cols:  # orthonormal columns
        gram = np.einsum("tij,tik->tjk", q, q)
        eye = np.eye(n_cols)
    else:  # orthonormal rows
        gram = np.einsum("tji,tki->tjk", q, q)
        eye = np.eye(n_rows)
    assert np.max(np.abs(gram - eye)) < 1e-13 * max(shape)
    # not degenerate: matrices of different indices differ (1 x 1 ones are just +-1)
    if max(shape) > 1:
        assert np.min(np.abs(q[1:] - q[:-1]).max(axis=(1, 2))) > 1e-3


def test_square_determinant_is_plus_or_minus_one_with_mean_zero():
    """Haar on O(n), not SO(n): det = +-1 each with probability 1/2."""
    q = nf.haar_orthogonal(5, 5, 40_000, seed=4)
    det = np.linalg.det(q)
    np.testing.assert_allclose(np.abs(det), 1.0, atol=1e-12)
    assert abs(moment_z(det, 0.0)) < Z_PASS
    # negative control: without the sign fix det Q = (-1)^(number of reflectors)
    assert abs(moment_z(np.linalg.det(numpy_qr_unfixed(40_000, 5, 5, 5)), 0.0)) > Z_REJECT


# ------------------------------------------------------------ Diaconis-Shahshahani


@pytest.mark.parametrize("n,kmax,size,seed", [(4, 4, 200_000, 7), (6, 6, 100_000, 8)])
def test_diaconis_shahshahani(n, kmax, size, seed):
    """For O Haar on O(n), E[(tr O)^k] = E[g^k], g ~ N(0,1), exactly for k <= n:
    0, 1, 0, 3 (, 0, 15) for k = 1..4 (6)."""
    q = nf.haar_orthogonal(n, n, size, seed=seed)
    z = trace_power_z(q, kmax)
    assert np.max(np.abs(z)) < Z_PASS, f"z-scores of E[(tr O)^k]: {z}"
    # negative controls (the point of the test): without the sign correction the
    # diagonal of Q is biased negative and E[tr Q] is far from 0 (about -0.8 at n=4).
    z_np = trace_power_z(numpy_qr_unfixed(size // 4, n, n, seed + 100), kmax)
    assert np.max(np.abs(z_np)) > Z_REJECT, f"numpy unfixed QR not rejected: {z_np}"
    z_pk = trace_power_z(package_householder_unfixed(20_000, n, n, seed + 200), kmax)
    assert np.max(np.abs(z_pk)) > Z_REJECT, f"unfixed Householder not rejected: {z_pk}"


# -------------------------------------------------------- frames: entry moments


def entry_moments_z(q, m):
    """z-scores of E[O_11], E[O_11^2] = 1/m, E[O_11^4] = 3/(m(m+2)) for a frame whose
    unit vectors live in R^m, using entry (0,0) and, for the fourth power, also the
    average over all entries of each matrix (every entry has the same law; the average
    of the squares is exactly 1/m by orthonormality, so it carries no information)."""
    o11 = q[:, 0, 0]
    return np.array(
        [
            moment_z(o11, 0.0),
            moment_z(o11**2, 1.0 / m),
            moment_z(o11**4, 3.0 / (m * (m + 2))),
            moment_z((q**4).mean(axis=(1, 2)), 3.0 / (m * (m + 2))),
        ]
    )


@pytest.mark.parametrize("n_rows,n_cols", [(9, 3), (12, 5), (3, 9)])
def test_frame_entry_moments(n_rows, n_cols):
    """Each column (tall) or row (wide) is uniform on the unit sphere of R^m,
    m = max(n_rows, n_cols): E[O_11] = 0, E[O_11^2] = 1/m, E[O_11^4] = 3/(m(m+2))."""
    m = max(n_rows, n_cols)
    q = nf.haar_orthogonal(n_rows, n_cols, 200_000, seed=9)
    z = entry_moments_z(q, m)
    assert np.max(np.abs(z)) < Z_PASS, f"entry-moment z-scores: {z}"
    # negative controls: unfixed QR gives O_11 = -|g_11|/|g_1| < 0 always
    tall = (max(n_rows, n_cols), min(n_rows, n_cols))
    z_np = entry_moments_z(numpy_qr_unfixed(50_000, *tall, seed=10), m)
    z_pk = entry_moments_z(package_householder_unfixed(20_000, *tall, seed=11), m)
    assert abs(z_np[0]) > Z_REJECT and abs(z_pk[0]) > Z_REJECT, (z_np, z_pk)
    # and a frame of the wrong dimension (e.g. a normalisation over m-1 entries)
    assert abs(moment_z(q[:, 0, 0] ** 2, 1.0 / (m - 1))) > Z_REJECT


def test_frame_second_order_correlations():
    """Exact second-order Weingarten values for Haar O(m): one column is uniform on the
    sphere, E[O_11^2 O_21^2] = 1/(m(m+2)); E[O_11 O_12] = 0; and the two-column value
    E[O_11^2 O_22^2] = (m+1)/((m-1) m (m+2)) (not 1/m^2: columns are not independent)."""
    m = 5
    q = nf.haar_orthogonal(m, m, 200_000, seed=12)
    z = np.array(
        [
            moment_z(q[:, 0, 0] ** 2 * q[:, 1, 0] ** 2, 1.0 / (m * (m + 2))),
            moment_z(q[:, 0, 0] * q[:, 0, 1], 0.0),
            moment_z(q[:, 0, 0] ** 2 * q[:, 1, 1] ** 2, (m + 1) / ((m - 1) * m * (m + 2))),
        ]
    )
    assert np.max(np.abs(z)) < Z_PASS, z
    # negative control: independent columns would give E[O_11^2 O_22^2] = 1/m^2
    assert abs(moment_z(q[:, 0, 0] ** 2 * q[:, 1, 1] ** 2, 1.0 / m**2)) > Z_REJECT


# ------------------------------------------------- the weights inside the network


@pytest.mark.parametrize("method,seed", [("dense", 13), ("projected", 14)])
def test_network_orthogonal_weights_are_haar(method, seed):
    """With a one-layer linear network (n, n), C_W = 1 and the inputs the unit vectors
    e_1..e_n, z^(1)[:, a] = W e_a: the preactivations ARE the weight matrix (up to an
    overall sign on the projected path, which leaves Haar measure invariant), so the
    Diaconis-Shahshahani moments test the law of the orthogonal init itself."""
    n = 4
    net = nf.Network((n, n), activation="linear", init="orthogonal", cw=1.0)
    z = nf.preactivations(net, np.eye(n), 100_000, seed=seed, method=method)[0]
    gram = np.einsum("tia,tib->tab", z, z)
    assert np.max(np.abs(gram - np.eye(n))) < 1e-12
    zs = trace_power_z(z, 4)
    assert np.max(np.abs(zs)) < Z_PASS, f"E[(tr W)^k] z-scores ({method}): {zs}"


# ----------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("shape", [(6, 6), (7, 3), (3, 7)])
def test_reproducible_by_seed_and_index(shape):
    """Matrix ``index`` of ``seed`` is the same whatever ``size``, ``first`` or the
    number of threads; other seeds or indices give other matrices."""
    big = nf.haar_orthogonal(*shape, 50, seed=21)
    small = nf.haar_orthogonal(*shape, 8, seed=21)
    np.testing.assert_array_equal(big[:8], small)
    one = nf.haar_orthogonal(*shape, 1, seed=21, first=37)
    np.testing.assert_array_equal(big[37], one[0])
    mid = nf.haar_orthogonal(*shape, 10, seed=21, first=30)
    np.testing.assert_array_equal(big[30:40], mid)
    with nf.thread_limit(1):
        serial = nf.haar_orthogonal(*shape, 50, seed=21)
    np.testing.assert_array_equal(big, serial)
    other = nf.haar_orthogonal(*shape, 50, seed=22)
    assert np.min(np.abs(other - big).max(axis=(1, 2))) > 1e-3
    assert np.abs(big[0] - big[1]).max() > 1e-3
