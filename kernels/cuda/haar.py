"""Householder QR and Haar frames on the GPU, one thread block per matrix.

Twins of ``kernels/cpu/haar.py`` with the same canonical rules (dependent columns zeroed,
H_j = I, R_jj = 0; columns of extreme magnitude scaled by a power of two, left-looking;
Mezzadri's sign fix for Haar frames; ``extract_r`` and ``scale_exponent`` are the CPU
functions compiled as device functions). Matrices are column-major in flat buffers,
a[c * m + i] = A_ic, the layout of the CPU's transposed buffers, so the reflectors and
the Gaussian draws sit at the same positions on both backends. Reductions over rows are
fixed-order sums over the block's threads (``block_sum``: warp shuffle trees, then the
warps in order), so every result is deterministic; it differs from the CPU only in
summation order (rounding).

Kernels:
    haar_matrices_kernel(seed, first, stream, out, work)   out[t] = Haar matrix of index
        first + t (the twin of ``batch_haar_matrices``), block t.
"""

import math

from numba import cuda, float64

from ..cpu import haar as cpu_haar
from .block import THREADS, block_max, block_sum, fill_normals
from .device import device_twins

RANK_TOL_FLOAT64 = cpu_haar.RANK_TOL_FLOAT64
SCALE_LIMIT_FLOAT64 = cpu_haar.SCALE_LIMIT_FLOAT64
_twins = device_twins(cpu_haar, ("extract_r", "scale_exponent"))
extract_r = _twins["extract_r"]  # canonical R, diag >= 0
scale_exponent = _twins["scale_exponent"]


@cuda.jit(device=True)
def column_exponent(col, size, shared):
    """The CPU ``column_exponent`` of col[:size] (float64): ``scale_exponent`` of the
    block's max |col_i|."""
    part = 0.0
    i = cuda.threadIdx.x
    while i < size:
        part = max(part, abs(col[i]))
        i += cuda.blockDim.x
    return scale_exponent(block_max(part, shared), SCALE_LIMIT_FLOAT64)


@cuda.jit(device=True)
def scale_column(col, size, e):
    """col[:size] *= 2^e (the CPU ``scale_column``)."""
    i = cuda.threadIdx.x
    while i < size:
        col[i] = math.ldexp(col[i], e)
        i += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def column_dot(a, m, j, c1, c2, shared):
    """sum_{i >= j} a[c1 m + i] a[c2 m + i] over the block."""
    part = 0.0
    i = j + cuda.threadIdx.x
    while i < m:
        part += a[c1 * m + i] * a[c2 * m + i]
        i += cuda.blockDim.x
    return block_sum(part, shared)


@cuda.jit(device=True)
def reflect_column(v, beta, target, m, j, shared):
    """target[j:] -= beta (v[j:] . target[j:]) v[j:] (H = I - beta v v^T), both flat
    column buffers of length m."""
    part = 0.0
    i = j + cuda.threadIdx.x
    while i < m:
        part += v[i] * target[i]
        i += cuda.blockDim.x
    f = beta * block_sum(part, shared)
    i = j + cuda.threadIdx.x
    while i < m:
        target[i] -= f * v[i]
        i += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def householder_factor(a, m, n, beta, rdiag, shared, small):
    """In-place Householder QR of the column-major m x n matrix ``a`` (the CPU
    ``householder_factor``, left-looking, columns of extreme magnitude scaled): k =
    min(m, n) reflectors below the diagonal, beta[j] and rdiag[j] = R_jj. ``small``:
    shared scratch of >= 3 float64."""
    t = cuda.threadIdx.x
    k = min(m, n)
    for j in range(n):
        col = a[j * m : (j + 1) * m]
        e = column_exponent(col, m, shared)
        if e != 0:
            scale_column(col, m, -e)
        for i in range(min(j, k)):
            if beta[i] != 0.0:
                reflect_column(a[i * m : (i + 1) * m], beta[i], col, m, i, shared)
        if j < k:
            norm2 = column_dot(a, m, j, j, j, shared)
            if t == 0:
                above2 = 0.0  # reflectors are orthogonal: column norm^2 = above^2 + sub^2
                for i in range(j):
                    above2 += col[i] * col[i]
                x0 = col[j]
                if norm2 <= RANK_TOL_FLOAT64 * RANK_TOL_FLOAT64 * (
                    above2 + norm2
                ) and math.isfinite(norm2):
                    small[0] = 0.0  # beta: H_j = I, sub-column zeroed below
                    small[1] = 0.0  # R_jj
                    small[2] = 1.0
                else:
                    norm = math.sqrt(norm2)
                    alpha = -norm if x0 >= 0 else norm
                    v0 = x0 - alpha
                    small[0] = 2.0 / (norm2 - x0 * x0 + v0 * v0)
                    small[1] = alpha
                    small[2] = 0.0
                    col[j] = v0
                beta[j] = small[0]
                rdiag[j] = small[1]
            cuda.syncthreads()
            if small[2] != 0.0:
                i = j + t
                while i < m:
                    col[i] = 0.0
                    i += cuda.blockDim.x
                cuda.syncthreads()
        if e != 0:  # R's column back to the input's scale; the reflector stays scaled
            scale_column(col, min(j, k), e)
            if t == 0 and j < k:
                rdiag[j] = math.ldexp(rdiag[j], e)
            cuda.syncthreads()


@cuda.jit(device=True)
def canonical_r(a, m, n, rdiag, r):
    """r[:k, :n] = canonical R (diag >= 0) of ``a`` factored by ``householder_factor``
    (thread 0 runs the CPU ``extract_r``)."""
    k = min(m, n)
    if cuda.threadIdx.x == 0:
        extract_r(a[: n * m].reshape((n, m)).T, rdiag[:k], r[:k, :n])
    cuda.syncthreads()


@cuda.jit(device=True)
def form_q(a, m, k, beta, rdiag, q, shared):
    """Thin Q (column-major m x k, q[c m + i]) = H_0 ... H_{k-1} [I_k; 0] of the factored
    ``a``, with Mezzadri's sign fix (column c times sign(R_cc)): the Q whose R is the
    canonical one, and a Haar frame when ``a`` was Gaussian."""
    t = cuda.threadIdx.x
    for c in range(k):
        i = t
        while i < m:
            q[c * m + i] = 1.0 if i == c else 0.0
            i += cuda.blockDim.x
    cuda.syncthreads()
    for j in range(k - 1, -1, -1):
        if beta[j] == 0.0:
            continue
        for c in range(j, k):
            reflect_column(a[j * m : (j + 1) * m], beta[j], q[c * m : (c + 1) * m], m, j, shared)
    for c in range(k):
        if rdiag[c] < 0.0:
            i = t
            while i < m:
                q[c * m + i] = -q[c * m + i]
                i += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def haar_frame_from_stream(m, k, seed, network, stream, buf, q, beta, rdiag, shared, small):
    """Haar frame q (column-major m x k, m >= k) from one random stream: the CPU
    ``haar_frame_from_stream`` (Gaussian filled column by column into ``buf``, k m)."""
    fill_normals(buf, k * m, seed, network, stream, 1.0)
    householder_factor(buf, m, k, beta, rdiag, shared, small)
    form_q(buf, m, k, beta, rdiag, q, shared)


@cuda.jit(device=True)
def haar_matrix_from_stream(
    n_rows, n_cols, seed, network, stream, buf, q, beta, rdiag, shared, small
):
    """Haar matrix (n_rows x n_cols) in ``q``, the CPU ``haar_matrix_from_stream``:
    orthonormal columns if n_rows >= n_cols (then entry (i, j) at q[j n_rows + i]),
    orthonormal rows otherwise (the transpose of a frame: entry (i, j) at q[i n_cols + j])."""
    if n_rows >= n_cols:
        haar_frame_from_stream(
            n_rows, n_cols, seed, network, stream, buf, q, beta, rdiag, shared, small
        )
    else:
        haar_frame_from_stream(
            n_cols, n_rows, seed, network, stream, buf, q, beta, rdiag, shared, small
        )


@cuda.jit
def haar_matrices_kernel(seed, first, stream, out, work):
    """out[t] = Haar matrix (n_rows x n_cols) of index first + t, block t; ``work``
    (count, 2 n_rows n_cols + 2 min(n_rows, n_cols)) float64 scratch. Any block size
    that is a multiple of WARP up to THREADS."""
    net = cuda.blockIdx.x
    count, n_rows, n_cols = out.shape
    if net >= count:
        return
    shared = cuda.shared.array(THREADS, float64)
    small = cuda.shared.array(4, float64)
    size = n_rows * n_cols
    k = min(n_rows, n_cols)
    buf = work[net, :size]
    q = work[net, size : 2 * size]
    beta = work[net, 2 * size : 2 * size + k]
    rdiag = work[net, 2 * size + k : 2 * size + 2 * k]
    haar_matrix_from_stream(
        n_rows, n_cols, seed, first + net, stream, buf, q, beta, rdiag, shared, small
    )
    e = cuda.threadIdx.x
    while e < size:
        i = e // n_cols
        j = e % n_cols
        out[net, i, j] = q[j * n_rows + i] if n_rows >= n_cols else q[i * n_cols + j]
        e += cuda.blockDim.x


def haar_work_size(n_rows, n_cols):
    """Scratch float64 per matrix for ``haar_matrices_kernel``."""
    return 2 * n_rows * n_cols + 2 * min(n_rows, n_cols)


KERNELS = {"haar_matrices_kernel": haar_matrices_kernel}
