"""Householder QR and Haar-random orthonormal frames.

A Haar frame (m x k, m >= k, orthonormal columns) is the Q factor of the thin QR of an
m x k matrix of iid standard normals, *normalised so that diag(R) > 0* (Mezzadri 2007):
the columns of Q are multiplied by sign(R_jj). Without that sign correction the law
depends on the QR convention and is not Haar.

Numerically degenerate steps get canonical choices, so the factors are a continuous
function of the input away from a threshold and two exact implementations (float32 and
float64, CPU and GPU, any summation order) produce the same R up to the signs of its
rows: a sub-column whose norm is below RANK_TOL times its column's norm is numerically
in the span of the earlier columns; it is set to zero, H_j = I and R_jj = 0. RANK_TOL is
1e-11 for float64 and 1e-5 for float32 (orders above the rounding of a dot product of
a few thousand terms). Gaussian matrices (Haar frames) never hit it. A sub-column with an
infinite norm is never dependent: its inf/NaN reaches R and the output.

Columns of extreme magnitude are scaled by a power of two before they are factored (as
LAPACK's dnrm2 and dlarfg scale before squaring), so no square over- or underflows: a
column whose largest |entry| is f 2^e, f in [0.5, 1), with |e| > SCALE_LIMIT (32 for
float32, 256 for float64) is factored as column * 2^-e, and its R entries (above and on
the diagonal) are multiplied back by 2^e at the end; its reflector stays in the scaled
form, which defines the same H_j. Power-of-two scaling is exact, so the factors are those
of the unscaled arithmetic whenever that does not over- or underflow, and columns in the
safe range (all ordinary inputs) take no scaling step at all: their results are
bit-identical to the unscaled algorithm.

The factorisation is left-looking (column j receives H_0, ..., H_{j-1}, then gives H_j):
every column undergoes the same operations in the same order as in the right-looking
form, and its scale factor is needed only while it is processed.

Reflectors are stored LAPACK-style in the lower part of the factored matrix. The
routines accept any memory layout; callers pass column-contiguous (Fortran) views when
columns are long.
"""

import math

import numpy as np
from numba import njit, prange

from .config import FASTMATH, FASTMATH_REDUCTIONS
from .rng import fill_normal

RANK_TOL_FLOAT64 = 1e-11
RANK_TOL_FLOAT32 = 1e-5
SCALE_LIMIT_FLOAT64 = 256
SCALE_LIMIT_FLOAT32 = 32


@njit(cache=True)
def scale_exponent(amax, limit):
    """The e with amax = f 2^e, f in [0.5, 1) (``math.frexp``), when |e| > limit: the
    column of largest |entry| ``amax`` is factored as column * 2^-e. 0 (no scaling) when
    |e| <= limit or amax is 0 or non-finite."""
    if amax == 0.0 or not math.isfinite(amax):
        return 0
    e = math.frexp(amax)[1]
    return e if abs(e) > limit else 0


@njit(cache=True)
def scale_limit(itemsize):
    """SCALE_LIMIT of the dtype of ``itemsize`` bytes."""
    return SCALE_LIMIT_FLOAT32 if itemsize == 4 else SCALE_LIMIT_FLOAT64


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True, inline="always")
def column_exponent(col):
    """``scale_exponent`` of max_i |col_i| for col's dtype."""
    amax = 0.0
    for i in range(col.size):
        amax = max(amax, abs(col[i]))
    return scale_exponent(amax, scale_limit(col.itemsize))


@njit(cache=True, inline="always")
def scale_column(col, e):
    """col *= 2^e (``math.ldexp``: exact unless the result over- or underflows)."""
    for i in range(col.size):
        col[i] = math.ldexp(col[i], e)


@njit(fastmath=FASTMATH_REDUCTIONS, error_model="numpy", cache=True, inline="always")
def apply_reflector(v, beta, target):
    """target -= beta (v . target) v for 1-D v, target of one length (H = I - beta v v^T).

    Callers pass column slices ``a[j:, c]``, so every loop starts at 0: Numba's
    negative-index wraparound is provably dead and LLVM emits contiguous vector loads
    instead of gathers.
    """
    dot = 0.0
    for i in range(v.size):
        dot += v[i] * target[i]
    f = beta * dot
    for i in range(v.size):
        target[i] -= f * v[i]


@njit(fastmath=FASTMATH_REDUCTIONS, error_model="numpy", cache=True)
def householder_factor(a, beta, rdiag):
    """In-place Householder QR of ``a`` (m x n), k = min(m, n) reflectors.

    On return column j of ``a`` from row j down holds the reflector v_j, with
    H_j = I - beta_j v_j v_j^T and A = H_0 ... H_{k-1} R; the strict upper part of
    ``a[:k]`` holds R above its diagonal and ``rdiag`` holds diag(R). Numerically
    dependent columns follow the canonical rule, columns of extreme magnitude the
    power-of-two scaling, of the module docstring.
    """
    m, n = a.shape
    k = min(m, n)
    tol = RANK_TOL_FLOAT32 if a.itemsize == 4 else RANK_TOL_FLOAT64
    for j in range(n):
        e = column_exponent(a[:, j])
        if e != 0:
            scale_column(a[:, j], -e)
        for i in range(min(j, k)):
            if beta[i] != 0.0:
                apply_reflector(a[i:, i], beta[i], a[i:, j])
        if j < k:
            v = a[j:, j]
            norm2 = 0.0
            for i in range(v.size):
                norm2 += v[i] * v[i]
            above2 = 0.0  # reflectors are orthogonal: column norm^2 = above^2 + sub-column^2
            for i in range(j):
                above2 += a[i, j] * a[i, j]
            if norm2 <= tol * tol * (above2 + norm2) and math.isfinite(norm2):
                for i in range(v.size):
                    v[i] = 0.0
                beta[j] = 0.0
                rdiag[j] = 0.0
            else:
                norm = math.sqrt(norm2)
                x0 = v[0]
                alpha = -norm if x0 >= 0 else norm
                v0 = x0 - alpha
                beta[j] = 2.0 / (norm2 - x0 * x0 + v0 * v0)
                v[0] = v0
                rdiag[j] = alpha
        if e != 0:  # R's column back to the input's scale; the reflector stays scaled
            scale_column(a[: min(j, k), j], e)
            if j < k:
                rdiag[j] = math.ldexp(rdiag[j], e)


@njit(fastmath=FASTMATH, cache=True)
def extract_r(a, rdiag, r):
    """Canonical R factor (k x n) of a matrix factored by ``householder_factor``: rows
    multiplied by sign(R_jj) so that diag(R) >= 0.

    That R is unique for full-rank input (continuous in it), whatever sign each reflector
    chose, so the projected sampler's z = F R does not jump when a pivot's sign is
    rounding noise. Exact in law: F D with D = diag(+-1) has the law of F for Gaussian F
    and for Haar frames.
    """
    k, n = r.shape
    for j in range(k):
        sign = -1.0 if rdiag[j] < 0.0 else 1.0
        for c in range(n):
            if c < j:
                r[j, c] = 0.0
            elif c == j:
                r[j, c] = sign * rdiag[j]
            else:
                r[j, c] = sign * a[j, c]


@njit(fastmath=FASTMATH, cache=True)
def form_q(a, beta, q):
    """Thin Q (m x k) = H_0 ... H_{k-1} [I_k; 0] from ``householder_factor`` output."""
    m, k = q.shape
    for i in range(m):
        for c in range(k):
            q[i, c] = 1.0 if i == c else 0.0
    for j in range(k - 1, -1, -1):
        if beta[j] == 0.0:
            continue
        for c in range(j, k):
            apply_reflector(a[j:, j], beta[j], q[j:, c])


@njit(fastmath=FASTMATH, cache=True)
def sign_fix(q, rdiag):
    """Mezzadri's correction: column j of Q times sign(R_jj), so diag(R) > 0."""
    m, k = q.shape
    for c in range(k):
        if rdiag[c] < 0:
            for i in range(m):
                q[i, c] = -q[i, c]


@njit(fastmath=FASTMATH, cache=True)
def haar_frame(gauss, beta, rdiag, q):
    """Haar frame q (m x k) from an m x k matrix ``gauss`` of iid N(0,1) (overwritten)."""
    householder_factor(gauss, beta, rdiag)
    form_q(gauss, beta, q)
    sign_fix(q, rdiag)


@njit(fastmath=FASTMATH, cache=True)
def haar_frame_from_stream(m, k, seed, network, stream, q):
    """Haar frame (m x k, m >= k) drawn from one random stream into ``q``.

    The Gaussian is filled column by column (k x m buffer, transposed view), so the
    Householder loops run over contiguous memory.
    """
    buf = np.empty((k, m))
    fill_normal(buf.ravel(), seed, network, stream, 1.0)
    beta = np.empty(k)
    rdiag = np.empty(k)
    haar_frame(buf.T, beta, rdiag, q)


@njit(fastmath=FASTMATH, cache=True)
def haar_matrix_from_stream(n_rows, n_cols, seed, network, stream, out):
    """Haar matrix ``out`` (n_rows x n_cols): orthonormal columns if n_rows >= n_cols,
    orthonormal rows otherwise (then the transpose of a Haar n_cols x n_rows frame)."""
    if n_rows >= n_cols:
        q = np.empty((n_cols, n_rows)).T
        haar_frame_from_stream(n_rows, n_cols, seed, network, stream, q)
        out[:, :] = q
    else:
        q = np.empty((n_rows, n_cols)).T
        haar_frame_from_stream(n_cols, n_rows, seed, network, stream, q)
        out[:, :] = q.T


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_haar_matrices(seed, first, stream, out):
    """out[t] = Haar matrix of index first + t (parallel over t)."""
    count, n_rows, n_cols = out.shape
    for t in prange(count):
        haar_matrix_from_stream(n_rows, n_cols, seed, first + t, stream, out[t])
