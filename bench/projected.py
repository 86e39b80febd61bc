"""What the projected baselines (NumPy, PyTorch, JAX) share: the bookkeeping around their
own sampling, as bench/dense.py does for the dense baselines.

The projected baselines draw nnft_fast's exact low-rank law of every layer
(docs/projected-sampler.md) with their own library, batched over a chunk of networks:
the (B x B) Gram matrix of the layer's input columns and its batched Cholesky factor
(``eigh`` where a Gram matrix is singular), then n_out x B Gaussian numbers (Gaussian
weights) or the first n_out rows of batched-QR Haar frames of max(n_out, n_in) rows
(orthogonal weights); see bench/numpy_projected.py's docstring for the law. They have the
interface of bench.dense (``run``, ``whole``, ``next_network``, ``as_ensemble``) and are
timed by ``bench.methods.DenseMethod``:

    NumpyProjected          bench/numpy_projected.py (imports nothing from nnft_fast) in
                            chunks, over ``threads`` worker threads (one Generator each)
    TorchProjectedEnsemble  bench/torch_projected.py
    JaxProjectedEnsemble    bench/jax_projected.py

``projected_chunk`` is their default chunk size: the projected path holds only n x B
numbers per layer and network, so chunks are far larger than the dense ones.
"""

import numpy as np

from . import numpy_projected as npp
from .dense import DenseEnsemble, statistic_tables


def projected_chunk(widths, n_inputs, budget=1 << 20):
    """Networks per batch: ~``budget`` doubles (8 MiB) of pair products (n x B(B+1)/2) in
    the widest layer, between 1 and 1024."""
    pairs = n_inputs * (n_inputs + 1) // 2
    return int(min(1024, max(1, budget // (max(widths[1:]) * pairs))))


def check_tables(tables, n_inputs, four_point):
    """Raise unless a baseline's own statistic tables are ``MomentLayout``'s."""
    ours = statistic_tables(n_inputs, four_point)
    if len(tables) != len(ours) or any(not np.array_equal(a, b) for a, b in zip(tables, ours)):
        raise AssertionError("statistic tables differ from nnft_fast's MomentLayout")


class NumpyProjected(DenseEnsemble):
    """bench/numpy_projected.py in chunks of ``chunk`` networks over ``threads`` threads.

    Thread t draws from ``default_rng`` of child t of ``SeedSequence(seed)`` (kept
    networks) or of ``SeedSequence([seed, 1])`` (pilots, warm-up: never kept). Run it with
    NumPy's OpenBLAS at one thread when ``threads`` > 1 (``DenseMethod(blas=1)``).
    """

    name = "numpy-projected"
    algorithm = "projected"

    def __init__(self, widths, X, *, threads=1, chunk=None, **kw):
        X = np.asarray(X, dtype=np.float64)
        super().__init__(widths, X, chunk=chunk or projected_chunk(widths, X.shape[0]), **kw)
        self.threads = int(threads)
        self.tables = npp.statistic_tables(self.X.shape[0], self.four_point)
        check_tables(self.tables, self.X.shape[0], self.four_point)
        self.xt = self.X.T.copy()
        self.rngs, self.scratch_rngs = (
            [np.random.default_rng(s) for s in np.random.SeedSequence(e).spawn(self.threads)]
            for e in (self.seed, [self.seed, 1])
        )
        self.pool = npp.worker_pool(self.threads)

    def whole(self, n):
        return n

    def run(self, n, keep=True):
        rngs = self.rngs if keep else self.scratch_rngs
        args = (self.widths, self.xt, *self.law, self.tables)
        return self.run_chunks(
            n, keep, lambda c: npp.threaded_statistics(self.pool, rngs, c, *args)
        )
