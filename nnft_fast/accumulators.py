"""Streaming, mergeable moment accumulators and the estimators of docs/estimators.md.

Network e adds its per-layer statistics [G | Q | GG] (see ``kernels.cpu.moments``) to
block ``e mod n_blocks``. Memory is (n_blocks x L x n_stat) float64, flat in the number
of networks; two accumulators over disjoint networks merge by adding block sums.

Estimators from totals T over N networks (layer width n):
    K_ab            = T_G / N                                   two-point
    Qbar_abcd       = T_Q / N                                   same neuron, raw
    KK_abcd         = (T_G,ab T_G,cd - T_GG,abcd) / (N (N-1))   unbiased K_ab K_cd
    P_abcd          = (n T_GG / N - Qbar) / (n - 1)             distinct neurons, raw
    C_distinct      = P - KK
    C_same          = Qbar - (KK_abcd + KK_acbd + KK_adbc)
    V               = n_{l-1} C_distinct                        Roberts-Yaida vertex
Standard errors: delete-one-block jackknife over the non-empty blocks; the skewness of
the replicas flags error bars that heavy tails make unreliable (``SKEWNESS_LIMIT``).

Non-finite networks: ``nonfinite[l-1]`` counts the networks with a non-finite statistic
(an overflowed or NaN preactivation) at layer l or an earlier one; such a network stays
wrong downstream even where it looks finite again (ReLU maps NaN to 0). Estimates at a
layer with a nonzero count carry a ``NonFiniteWarning`` (``nnft_fast.ensemble``).
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np

from nnft_fast.kernels.cpu.moments import add_to_blocks

DEFAULT_BLOCKS = 64


class NonFiniteWarning(RuntimeWarning):
    """An estimate whose networks (or whose estimator) produced inf or NaN."""


def diverged_counts(bad):
    """Per layer, how many networks are non-finite at that layer or an earlier one, from
    ``bad`` (count, L): whether network t's statistics at layer l hold a non-finite value."""
    return np.logical_or.accumulate(np.asarray(bad, bool), axis=1).sum(axis=0)


@dataclass(frozen=True)
class MomentLayout:
    """Index tables between compact statistics vectors and full B-index tensors."""

    n_inputs: int
    four_point: bool

    @property
    def pairs(self):
        return [(a, b) for a in range(self.n_inputs) for b in range(a, self.n_inputs)]

    @property
    def quads(self):
        return list(itertools.combinations_with_replacement(range(self.n_inputs), 4))

    def kernel_tables(self):
        """(pair_a, pair_b, quad_p1, quad_p2) int64 arrays for the kernels (the quad
        tables empty without four-point statistics: they grow as B^4)."""
        pair_a, pair_b = (np.asarray(t, np.int64) for t in np.triu_indices(self.n_inputs))
        if not self.four_point:  # many inputs (fields on B points): no Python loops
            return pair_a, pair_b, np.zeros(0, np.int64), np.zeros(0, np.int64)
        pid = {p: i for i, p in enumerate(self.pairs)}
        quads = self.quads
        return (
            pair_a,
            pair_b,
            np.array([pid[q[:2]] for q in quads], np.int64),
            np.array([pid[q[2:]] for q in quads], np.int64),
        )

    @property
    def n_pairs(self):
        return self.n_inputs * (self.n_inputs + 1) // 2

    @property
    def n_quads(self):
        """Number of index quadruples a <= b <= c <= d: C(B + 3, 4)."""
        return math.comb(self.n_inputs + 3, 4)

    @property
    def n_stat(self):
        p = self.n_pairs
        return p + self.n_quads + p * (p + 1) // 2 if self.four_point else p

    def full_indices(self):
        """Index arrays mapping compact vectors to full (B,B) and (B,B,B,B) tensors (the
        latter two None without four-point statistics)."""
        nb = self.n_inputs
        pid = {p: i for i, p in enumerate(self.pairs)}
        r2 = range(nb)
        pair_full = np.array([[pid[tuple(sorted((a, b)))] for b in r2] for a in r2])
        if not self.four_point:
            return pair_full, None, None
        qid = {q: i for i, q in enumerate(self.quads)}
        quad_full = np.empty((nb,) * 4, np.int64)
        gg_full = np.empty((nb,) * 4, np.int64)
        p = self.n_pairs
        gg_ids = {}
        idx = 0
        for t1 in range(p):
            for t2 in range(t1, p):
                gg_ids[(t1, t2)] = idx
                idx += 1
        for a, b, c, d in itertools.product(r2, repeat=4):
            quad_full[a, b, c, d] = qid[tuple(sorted((a, b, c, d)))]
            t1, t2 = pair_full[a, b], pair_full[c, d]
            gg_full[a, b, c, d] = gg_ids[(min(t1, t2), max(t1, t2))]
        return pair_full, quad_full, gg_full


@dataclass
class LayerMoments:
    """Full-tensor estimates of one layer; arrays may carry leading replica axes."""

    two_point: np.ndarray
    same_raw: np.ndarray = None
    distinct_raw: np.ndarray = None
    same_connected: np.ndarray = None
    distinct_connected: np.ndarray = None
    vertex: np.ndarray = None


def layer_estimates(totals, count, layout, width, fan_in):
    """Estimators of the module docstring from totals (..., n_stat) and counts (...)."""
    pair_full, quad_full, gg_full = layout.full_indices()
    n_count = np.asarray(count, dtype=np.float64)[..., None, None]
    p, q = layout.n_pairs, layout.n_quads
    t_g = totals[..., :p][..., pair_full]
    k = t_g / n_count
    if not layout.four_point:
        return LayerMoments(two_point=k)
    n4 = n_count[..., None, None]
    qbar = totals[..., p : p + q][..., quad_full] / n4
    t_gg = totals[..., p + q :][..., gg_full]
    kk = (np.einsum("...ab,...cd->...abcd", t_g, t_g) - t_gg) / (n4 * (n4 - 1.0))
    same_connected = (
        qbar - kk - np.einsum("...acbd->...abcd", kk) - np.einsum("...adbc->...abcd", kk)
    )
    if width > 1:
        distinct_raw = (width * t_gg / n4 - qbar) / (width - 1.0)
    else:
        distinct_raw = np.full_like(qbar, np.nan)
    distinct_connected = distinct_raw - kk
    return LayerMoments(
        two_point=k,
        same_raw=qbar,
        distinct_raw=distinct_raw,
        same_connected=same_connected,
        distinct_connected=distinct_connected,
        vertex=fan_in * distinct_connected,
    )


class BlockAccumulator:
    """Per-layer block sums (n_blocks x L x n_stat) of per-network statistics: network e
    adds to block e mod n_blocks (``add_to_blocks``, order fixed by the index), and the
    per-layer count of non-finite networks (module docstring). Memory is flat in the
    number of networks; accumulators of disjoint networks merge by adding."""

    def __init__(self, n_layers, n_stat, n_blocks):
        if n_blocks < 2:
            raise ValueError(f"n_blocks must be >= 2 for error bars, got {n_blocks}")
        self.n_blocks = int(n_blocks)
        self.block_sums = np.zeros((self.n_blocks, n_layers, n_stat))
        self.block_counts = np.zeros(self.n_blocks, np.int64)
        self.nonfinite = np.zeros(n_layers, np.int64)

    @property
    def n_networks(self):
        return int(self.block_counts.sum())

    def add(self, stats, first_network):
        """Add per-network statistics ``stats`` (count, L, n_stat) of networks first, ...:
        a NumPy array, or statistics left on a GPU (``gpu_engine.DeviceStatistics``, added
        there in the same order; only per-network finiteness flags come back)."""
        if isinstance(stats, np.ndarray):
            add_to_blocks(stats, np.int64(first_network), self.block_sums, self.block_counts)
            bad = ~np.isfinite(stats).all(axis=2)
        else:
            stats.add_to_blocks(np.int64(first_network), self.block_sums, self.block_counts)
            bad = stats.nonfinite_rows()
        self.nonfinite += diverged_counts(bad)

    def _add_sums(self, other, out):
        """``out`` (a fresh accumulator like self) holding self + other."""
        if not self.compatible(other):
            raise ValueError(
                f"cannot merge {type(self).__name__}s of different widths, "
                "inputs, observables or block counts"
            )
        out.load_state(self.state())
        out.add_state(other.state())
        return out

    def state(self):
        """The arrays that fully describe the accumulator (checkpoints, shard results):
        {"block_sums": (n_blocks, L, n_stat) float64, "block_counts": (n_blocks,) int64,
        "nonfinite": (L,) int64}. ``load_state`` restores them, ``add_state`` adds them."""
        return {
            "block_sums": self.block_sums,
            "block_counts": self.block_counts,
            "nonfinite": self.nonfinite,
        }

    def _checked_state(self, state):
        """``state`` (a mapping like ``state()``'s) as arrays of this accumulator's dtypes,
        after checking that it has every field with this accumulator's shapes."""
        mine = self.state()
        missing = sorted(set(mine) - set(state))
        if missing:
            raise ValueError(f"accumulator state lacks {', '.join(missing)}")
        arrays = {name: np.asarray(state[name], dtype=array.dtype) for name, array in mine.items()}
        for name, array in arrays.items():
            if array.shape != mine[name].shape:
                raise ValueError(
                    f"accumulator state field {name!r} has shape {array.shape}, "
                    f"expected {mine[name].shape}"
                )
        return arrays

    def load_state(self, state):
        """Replace this accumulator's arrays by (copies of) those of ``state``, a mapping
        with the fields and shapes of ``state()``."""
        for name, array in self._checked_state(state).items():
            setattr(self, name, array.copy())

    def add_state(self, state):
        """Add ``state`` (another accumulator's ``state()``, disjoint networks) to this one:
        block sums, block counts and non-finite counts add."""
        for name, array in self._checked_state(state).items():
            setattr(self, name, getattr(self, name) + array)

    def _layer_totals(self, idx):
        """(total sums, total count, leave-one-block-out sums, counts) of layer index idx."""
        if self.n_networks < 2:
            raise ValueError("estimates need at least 2 networks")
        sums = self.block_sums[:, idx, :]
        used = self.block_counts > 0
        total = sums.sum(axis=0)
        n_total = self.block_counts.sum()
        return total, n_total, total - sums[used], n_total - self.block_counts[used]


class MomentAccumulator(BlockAccumulator):
    """Per-layer block sums of [G | Q | GG] for one network architecture and input set."""

    def __init__(
        self, widths, n_inputs, four_point=True, n_blocks=DEFAULT_BLOCKS, neurons=None, layers=None
    ):
        """widths: (n_0, ..., n_L). neurons: neurons averaged per layer (default n_l; fewer
        when re-analysing stored subsets). layers: the layers that hold data (default all).
        """
        self.widths = tuple(int(w) for w in widths)
        self.neurons = tuple(int(n) for n in (neurons or self.widths[1:]))
        self.layers = tuple(layers or range(1, len(self.widths)))
        self.layout = MomentLayout(int(n_inputs), bool(four_point))
        super().__init__(self.n_layers, self.layout.n_stat, n_blocks)

    @property
    def n_layers(self):
        return len(self.widths) - 1

    def compatible(self, other):
        return (
            isinstance(other, MomentAccumulator)
            and self.widths == other.widths
            and self.neurons == other.neurons
            and self.layers == other.layers
            and self.layout == other.layout
            and self.n_blocks == other.n_blocks
        )

    def merge(self, other):
        """New accumulator holding both (disjoint sets of networks)."""
        return self._add_sums(
            other,
            MomentAccumulator(
                self.widths,
                self.layout.n_inputs,
                self.layout.four_point,
                self.n_blocks,
                self.neurons,
                self.layers,
            ),
        )

    def layer_with_jackknife(self, layer):
        """(estimate over all networks, delete-one-block replicas), both LayerMoments."""
        if layer not in self.layers:
            raise ValueError(f"layer {layer} holds no data here (available: {self.layers})")
        total, n_total, left_sums, left_counts = self._layer_totals(layer - 1)
        width = self.neurons[layer - 1]
        fan_in = self.widths[layer - 1]
        full = layer_estimates(total, n_total, self.layout, width, fan_in)
        leave_out = layer_estimates(left_sums, left_counts, self.layout, width, fan_in)
        return full, leave_out


def jackknife_error(replicas):
    """Delete-one-group jackknife standard error along axis 0,
    sqrt((g - 1)/g sum_r (x_r - mean)^2), with each element's deviations scaled by the
    power of two 2^-e of their largest (exact), so their squares neither over- nor
    underflow where the error itself is representable."""
    return _jackknife(replicas, skewness=False)[0]


def jackknife_error_and_skewness(replicas):
    """(``jackknife_error(replicas)``, the sample skewness of the replicas along axis 0,
    sqrt(g) sum_r d_r^3 / (sum_r d_r^2)^(3/2) with d_r = x_r - mean; NaN for g < 3 or
    where all replicas are equal). The error is the same, bit for bit.

    A skewness beyond ``SKEWNESS_LIMIT`` in absolute value says that one or a few blocks
    dominate the spread of the replicas: heavy-tailed per-network statistics, whose
    jackknife errors are too small in most ensembles (docs/estimators.md#coverage)."""
    return _jackknife(replicas, skewness=True)


# |skewness| of the delete-one-block replicas above which an error bar is flagged as
# unreliable (docs/estimators.md#coverage): normal replicas exceed it with probability
# < 0.2% at any number of blocks (none in 4e5 draws at 64 blocks); the heavy-tailed
# kurtosis ratios of deep narrow ReLU networks, whose 1-sigma coverage is ~58% instead of
# 68% with 3,000 networks, exceed it in 81-94% of such ensembles.
SKEWNESS_LIMIT = 2.0


def _jackknife(replicas, skewness):
    g = replicas.shape[0]
    nan = np.full(replicas.shape[1:], np.nan)
    if g < 2:
        return nan, nan
    dev = replicas - replicas.mean(axis=0)
    e = np.frexp(np.max(np.abs(dev), axis=0))[1]
    dev = np.ldexp(dev, -e)
    square = dev * dev
    sum_squares = np.sum(square, axis=0)
    error = np.ldexp(np.sqrt((g - 1.0) / g * sum_squares), e)
    if not skewness or g < 3:
        return error, nan
    square *= dev  # the cubes, in place: no further replica-sized array
    with np.errstate(divide="ignore", invalid="ignore"):
        skew = math.sqrt(g) * np.sum(square, axis=0) / sum_squares**1.5
    return error, skew


def jackknife_covariance(replicas):
    """Delete-one-group jackknife covariance of the columns of ``replicas`` (g, P):
    C_ij = (g - 1)/g sum_r (x_ri - mean_i)(x_rj - mean_j), the error formula of
    ``jackknife_error`` for every pair of entries, so ``diag(C)`` is ``jackknife_error**2``
    to rounding. Each column's deviations are scaled by the same power of two as there
    before the products (exact), so no entry over- or underflows where it is
    representable; the matrix is exactly symmetric. All NaN for g < 2."""
    replicas = np.asarray(replicas, dtype=np.float64)
    g, size = replicas.shape
    if g < 2 or size == 0:
        return np.full((size, size), np.nan)
    dev = replicas - replicas.mean(axis=0)
    e = np.frexp(np.max(np.abs(dev), axis=0))[1]
    dev = np.ldexp(dev, -e)
    products = dev.T @ dev
    products = (products + products.T) / 2.0  # exactly symmetric (the diagonal unchanged)
    return np.ldexp((g - 1.0) / g * products, e[:, None] + e[None, :])
