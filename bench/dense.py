"""What the dense baselines (NumPy, PyTorch, JAX) share: the bookkeeping around their own
sampling.

Every baseline draws explicit dense weight matrices with its own library and reduces
each layer's preactivations to nnft_fast's per-network statistics; this module gives
them one interface, used by ``bench.methods.DenseMethod``:

    runner = Baseline(widths, X, init=..., cw=..., cb=..., activation=..., seed=...)
    runner.run(n, keep)       # draw n networks (keep: count them for the statistics)
    runner.whole(n)           # n rounded to what one call draws (whole chunks)
    runner.next_network       # networks kept so far
    runner.as_ensemble()      # an nf.Ensemble of the kept networks (project estimators)

``DenseEnsemble`` is the base of the PyTorch and JAX baselines (bench/torch_baseline.py,
bench/jax_baseline.py), whose vectors [G | Q | GG] (``MomentLayout`` order) go into an
``nnft_fast.accumulators.MomentAccumulator``. ``NumpyDense`` wraps the independent NumPy
baseline (bench/numpy_baseline.py), whose full-tensor block sums are converted only when
the ensemble is asked for.
"""

import numpy as np

import nnft_fast as nf
from nnft_fast.accumulators import DEFAULT_BLOCKS, MomentAccumulator, MomentLayout

from .numpy_baseline import INITS, BaselineStats, run_dense_baseline


def default_chunk(widths, budget=1 << 21):
    """Networks per batch: ~``budget`` weight entries (16 MiB of float64) in the largest
    layer, between 1 and 256."""
    biggest = max(a * b for a, b in zip(widths[:-1], widths[1:]))
    return int(min(256, max(1, budget // biggest)))


def statistic_tables(n_inputs, four_point):
    """Index arrays (pair_a, pair_b, quad_p1, quad_p2, gg_1, gg_2) of ``MomentLayout``:
    the pairs a <= b, the quadruples a <= b <= c <= d as pairs of pairs, and the pairs of
    pairs p <= p' of GG."""
    layout = MomentLayout(n_inputs, four_point)
    return layout.kernel_tables() + np.triu_indices(layout.n_pairs)


class DenseEnsemble:
    """Shared state of a framework baseline; subclasses implement ``run(n, keep)``."""

    name = "dense"  # the Ensemble's method label, e.g. "torch-dense"
    algorithm = "dense"  # or "projected" (bench/projected.py): bench.matrix's two ratios

    def __init__(
        self,
        widths,
        X,
        *,
        init="gaussian",
        cw=2.0,
        cb=0.0,
        activation="relu",
        four_point=True,
        seed=0,
        chunk=None,
        n_blocks=DEFAULT_BLOCKS,
    ):
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.widths = tuple(int(w) for w in widths)
        self.X = np.asarray(X, dtype=np.float64)
        self.init, self.cw, self.cb, self.activation = init, float(cw), float(cb), activation
        self.four_point = bool(four_point)
        self.seed = seed
        self.chunk = chunk or default_chunk(self.widths)
        self.accumulator = MomentAccumulator(
            self.widths, self.X.shape[0], self.four_point, n_blocks
        )
        self.next_network = 0

    def whole(self, n):
        """n rounded up to whole chunks (one compiled shape for JAX)."""
        return -(-n // self.chunk) * self.chunk

    def run(self, n, keep=True):
        raise NotImplementedError

    @property
    def law(self):
        """(init, cw, cb, activation, four_point): what a chunk function needs besides
        its random source, widths and inputs."""
        return self.init, self.cw, self.cb, self.activation, self.four_point

    def run_chunks(self, n, keep, draw):
        """Draw n networks in chunks of ``chunk``: ``draw(c)`` gives the statistics
        (c, L, n_stat) of c fresh networks; kept ones go into the accumulator."""
        for start in range(0, n, self.chunk):
            c = min(self.chunk, n - start)
            stats = draw(c)
            if keep:
                self.accumulator.add(stats, self.next_network)
                self.next_network += c
        return n

    def network(self):
        return nf.Network(self.widths, self.activation, self.init, cw=self.cw, cb=self.cb)

    def as_ensemble(self):
        """An ``nf.Ensemble`` over the kept networks (two_point / four_point APIs)."""
        return nf.Ensemble(
            self.network(),
            self.X,
            self.seed,
            self.name,
            np.float64,
            self.accumulator,
            ((0, self.next_network),),
        )


def baseline_accumulator(stats: BaselineStats):
    """The NumPy baseline's full-tensor block sums as a compact ``MomentAccumulator``
    (block sums are linear, so picking the ``MomentLayout`` entries commutes with them)."""
    layout = MomentLayout(stats.n_inputs, stats.four_point)
    pairs, quads = layout.pairs, layout.quads
    a, b = (np.array(v) for v in zip(*pairs))
    parts = [stats.g[..., a, b]]
    if stats.four_point:
        q = tuple(np.array(v) for v in zip(*quads))
        t1, t2 = np.triu_indices(len(pairs))
        parts += [stats.q[(Ellipsis,) + q], stats.gg[..., a[t1], b[t1], a[t2], b[t2]]]
    acc = MomentAccumulator(stats.widths, stats.n_inputs, stats.four_point, stats.n_blocks)
    acc.block_sums = np.concatenate(parts, axis=-1)
    acc.block_counts = stats.counts.copy()
    return acc


class NumpyDense(DenseEnsemble):
    """bench/numpy_baseline.py's ``run_dense_baseline`` in chunks of ``chunk`` networks.

    Kept networks are numbered 0, 1, ... and every kept call draws from
    ``default_rng([seed, first network])``; networks not kept (pilots, warm-up) from
    ``default_rng([seed, 10**6 + k])``, another stream each call.
    """

    name = "numpy-dense"

    def __init__(self, widths, X, **kw):
        super().__init__(widths, X, **kw)
        if self.activation != "relu":
            raise ValueError("the NumPy baseline is written for ReLU networks")
        self.stats = None
        self._scratch = 0

    def whole(self, n):
        return n

    def run(self, n, keep=True):
        common = dict(init=self.init, cw=self.cw, cb=self.cb, chunk=self.chunk)
        if keep:
            self.stats = run_dense_baseline(
                self.widths,
                self.X,
                n,
                [self.seed, self.next_network],
                stats=self.stats,
                first=self.next_network,
                **common,
            )
            self.next_network += n
        else:
            run_dense_baseline(self.widths, self.X, n, [self.seed, 10**6 + self._scratch], **common)
            self._scratch += 1
        return n

    def as_ensemble(self):
        self.accumulator = baseline_accumulator(self.stats)
        return super().as_ensemble()
