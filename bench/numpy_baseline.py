"""Plain-NumPy dense baseline for the benchmarks: what a competent NumPy user would write.

For every network it draws explicit weight matrices with ``np.random.default_rng``
(Gaussian entries of variance cw/n_in, or Haar-orthogonal via ``np.linalg.qr`` of a
Gaussian with Mezzadri's sign fix, scaled by sqrt(cw * max(1, n_out/n_in))), pushes the
inputs X (B x n_0) through, and accumulates per layer the same per-network statistics
as nnft_fast (docs/estimators.md):

    G  = (1/n) z^T z                        (B x B)
    Q  = (1/n) sum_i z_i (x) z_i (x) z_i (x) z_i      (B x B x B x B)
    GG = G (x) G

Networks are processed in chunks with batched ``matmul`` / ``linalg.qr`` / ``einsum``,
which is the natural vectorisation (the cost is dominated by the n^2 random normals per
layer, or by the QR for orthogonal weights, either way). Statistics go into full-tensor
block sums (network index mod n_blocks) so memory stays flat; ``bench.dense.NumpyDense``
hands them to the project's estimators and jackknife errors (``nf.Ensemble``) for the
agreement check.

This module deliberately imports nothing from nnft_fast: the networks are drawn and
pushed through by NumPy alone, an independent implementation, used both as the speed
baseline and as a statistical cross-check.
"""

import numpy as np

INITS = ("gaussian", "orthogonal")


def relu(z):
    return np.maximum(z, 0.0)


def haar_frames(rng, count, m, k):
    """``count`` Haar frames (count, m, k), m >= k, orthonormal columns: Q of the QR of a
    Gaussian (m x k) matrix, columns times sign(diag R) (Mezzadri)."""
    q, r = np.linalg.qr(rng.standard_normal((count, m, k)))
    q *= np.sign(np.diagonal(r, axis1=-2, axis2=-1))[:, None, :]
    return q


def haar_weights(rng, count, n_out, n_in, cw):
    """``count`` scaled Haar weight matrices (count, n_out, n_in), entry variance cw/n_in.

    Orthonormal columns when n_out >= n_in, orthonormal rows otherwise: a Haar frame of
    (max x min), transposed if wide.
    """
    q = haar_frames(rng, count, max(n_out, n_in), min(n_out, n_in))
    if n_out < n_in:
        q = np.swapaxes(q, -1, -2)
    return np.sqrt(cw * max(1.0, n_out / n_in)) * q


def gaussian_weights(rng, count, n_out, n_in, cw):
    """``count`` iid Gaussian weight matrices (count, n_out, n_in), variance cw/n_in."""
    w = rng.standard_normal((count, n_out, n_in))
    w *= np.sqrt(cw / n_in)
    return w


class BaselineStats:
    """Block sums of the per-network G, Q, GG of every layer (flat in the network count)."""

    def __init__(self, widths, n_inputs, four_point=True, n_blocks=32):
        self.widths = tuple(int(w) for w in widths)
        self.n_inputs = int(n_inputs)
        self.four_point = bool(four_point)
        self.n_blocks = int(n_blocks)
        L, nb = len(self.widths) - 1, self.n_inputs
        self.g = np.zeros((self.n_blocks, L, nb, nb))
        if self.four_point:
            self.q = np.zeros((self.n_blocks, L) + (nb,) * 4)
            self.gg = np.zeros((self.n_blocks, L) + (nb,) * 4)
        self.counts = np.zeros(self.n_blocks, np.int64)
        self.n_networks = 0

    @property
    def n_layers(self):
        return len(self.widths) - 1

    def add_layer(self, layer, z, first):
        """Add the statistics of z (count, n, B) of networks first, ... at ``layer`` (1..L)."""
        n = z.shape[1]
        blocks = (first + np.arange(z.shape[0])) % self.n_blocks
        g = np.einsum("xia,xib->xab", z, z) / n
        np.add.at(self.g[:, layer - 1], blocks, g)
        if self.four_point:
            zz = z[:, :, :, None] * z[:, :, None, :]  # (c, n, B, B)
            q = np.einsum("xiab,xicd->xabcd", zz, zz) / n
            gg = np.einsum("xab,xcd->xabcd", g, g)
            np.add.at(self.q[:, layer - 1], blocks, q)
            np.add.at(self.gg[:, layer - 1], blocks, gg)

    def count(self, first, count):
        np.add.at(self.counts, (first + np.arange(count)) % self.n_blocks, 1)
        self.n_networks += count


def run_dense_baseline(
    widths,
    X,
    n_networks,
    seed=0,
    *,
    init="gaussian",
    cw=2.0,
    cb=0.0,
    activation=relu,
    four_point=True,
    chunk=8,
    stats=None,
    first=0,
    n_blocks=32,
):
    """Sample ``n_networks`` dense networks with NumPy and accumulate their statistics.

    widths: (n_0, n_1, ..., n_L); X: (B, n_0); cw, cb: scalars (same for every layer).
    Networks are numbered first, first+1, ... (for the block assignment only; the random
    stream is ``np.random.default_rng(seed)`` consumed chunk by chunk). Pass ``stats`` to
    keep accumulating into an existing ``BaselineStats``. Returns the ``BaselineStats``.
    """
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    X = np.asarray(X, dtype=np.float64)
    widths = tuple(int(w) for w in widths)
    if stats is None:
        stats = BaselineStats(widths, X.shape[0], four_point, n_blocks)
    draw = gaussian_weights if init == "gaussian" else haar_weights
    rng = np.random.default_rng(seed)
    for start in range(0, n_networks, chunk):
        c = min(chunk, n_networks - start)
        s = np.broadcast_to(X.T, (c,) + X.T.shape)  # (c, n_0, B)
        for layer in range(1, len(widths)):
            n_in, n_out = widths[layer - 1], widths[layer]
            w = draw(rng, c, n_out, n_in, cw)
            z = w @ s  # (c, n_out, B)
            if cb > 0.0:
                z += np.sqrt(cb) * rng.standard_normal((c, n_out, 1))
            stats.add_layer(layer, z, first + start)
            s = activation(z)
        stats.count(first + start, c)
    return stats
