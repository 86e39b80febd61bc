"""Accumulators of deformed runs (docs/fields.md#deformations): cos-net fields and MLPs.

Each network of the free ensemble brings, per layer, its statistics x (``[G | Q | GG |
tuples]`` of a field, ``[G | Q | GG]`` of an MLP layer) and its interaction s = S_int /
coupling. Block b holds for every layer, for the networks e = b mod n_blocks,

    [sum x | sum s | sum s x | sum w | sum w x | sum w^2],   w = exp(-coupling s - shift_b),

(``kernels.cpu.deformation.add_deformed_to_blocks``): the free sums (every estimator of
the free accumulator), the first-order sums (covariances with s) and the reweighted sums
with a per-block log-sum-exp shift (the block's largest -coupling s), so no weight
overflows. Merging and the jackknife's leave-one-block-out totals bring the w-columns to a
common shift first.
"""

import numpy as np

from nnft_fast.kernels.cpu.deformation import add_deformed_to_blocks

from .accumulators import DEFAULT_BLOCKS, BlockAccumulator, MomentAccumulator, diverged_counts
from .field_accumulator import FieldAccumulator


class DeformedSums:
    """The deformed block sums of a free accumulator class (module docstring); a mixin
    before ``FieldAccumulator`` or ``MomentAccumulator``, set up by ``_deform``."""

    def _deform(self, coupling, n_base):
        self.coupling = float(coupling)
        self.n_base = n_base
        BlockAccumulator.__init__(self, self.n_layers, 3 * n_base + 3, self.n_blocks)
        self.block_shift = np.zeros(self.n_blocks)

    def compatible(self, other):
        return (
            isinstance(other, DeformedSums)
            and super().compatible(other)
            and self.coupling == other.coupling
        )

    def add(self, stats, first_network):
        """Add per-network rows [x | s] (count, L, n_base + 1) of networks first, ..."""
        stats = np.ascontiguousarray(stats)
        add_deformed_to_blocks(
            stats,
            np.int64(first_network),
            self.coupling,
            self.block_sums,
            self.block_counts,
            self.block_shift,
        )
        self.nonfinite += diverged_counts(~np.isfinite(stats).all(axis=2))

    def state(self):
        return {**super().state(), "block_shift": self.block_shift}

    def add_state(self, state):
        """Add another accumulator's state (disjoint networks), bringing each block's
        w-columns to the larger of the two shifts first."""
        arrays = self._checked_state(state)
        n = self.n_base
        shift = np.maximum(self.block_shift, arrays["block_shift"])
        mine = np.where(self.block_counts > 0, np.exp(self.block_shift - shift), 0.0)
        theirs = np.where(arrays["block_counts"] > 0, np.exp(arrays["block_shift"] - shift), 0.0)
        sums = self.block_sums.copy()
        other = arrays["block_sums"]
        a, b = mine[:, None, None], theirs[:, None, None]
        plain = slice(0, 2 * n + 1)  # free and first-order sums: no shift
        weighted = slice(2 * n + 1, 3 * n + 2)
        squares = slice(3 * n + 2, 3 * n + 3)
        sums[:, :, plain] += other[:, :, plain]
        sums[:, :, weighted] = a * sums[:, :, weighted] + b * other[:, :, weighted]
        sums[:, :, squares] = a * a * sums[:, :, squares] + b * b * other[:, :, squares]
        self.block_sums = sums
        self.block_counts = self.block_counts + arrays["block_counts"]
        self.nonfinite = self.nonfinite + arrays["nonfinite"]
        self.block_shift = np.where((self.block_counts > 0), shift, 0.0)

    def _free_part(self, idx, stop):
        """``BlockAccumulator._layer_totals`` of layer index ``idx``, columns [:stop]."""
        total, n_total, left, left_counts = BlockAccumulator._layer_totals(self, idx)
        return total[:stop], n_total, left[:, :stop], left_counts

    def first_order_totals(self, idx=0):
        """(totals, count, leave-one-block-out totals, counts) of [x | s | s x] at layer
        index ``idx``."""
        return self._free_part(idx, 2 * self.n_base + 1)

    def reweighted_totals(self, idx=0):
        """(totals, leave-one-block-out totals) of [w | w x | w^2] at layer index ``idx``,
        every block's w-columns brought to the common shift max_b shift_b (the largest
        weight of the ensemble is 1)."""
        n = self.n_base
        used = self.block_counts > 0
        if self.n_networks < 2:
            raise ValueError("estimates need at least 2 networks")
        shift = self.block_shift[used].max()
        scale = np.exp(self.block_shift[used] - shift)
        columns = self.block_sums[used, idx, 2 * n + 1 :].copy()
        columns[:, :-1] *= scale[:, None]
        columns[:, -1] *= scale**2
        total = columns.sum(axis=0)
        return total, total - columns


class DeformedFieldAccumulator(DeformedSums, FieldAccumulator):
    """Block sums of the free, first-order and reweighted statistics of a cos-net field."""

    def __init__(self, widths, n_inputs, four_point, tuples, coupling, n_blocks=DEFAULT_BLOCKS):
        super().__init__(widths, n_inputs, four_point, tuples, n_blocks)
        self._deform(coupling, self.layout.n_stat + tuples.n_stat)

    def merge(self, other):
        return self._add_sums(
            other,
            DeformedFieldAccumulator(
                self.widths,
                self.layout.n_inputs,
                self.layout.four_point,
                self.tuples,
                self.coupling,
                self.n_blocks,
            ),
        )

    def _layer_totals(self, idx):
        """The free moment part (FieldAccumulator's estimators)."""
        return self._free_part(idx, self.layout.n_stat)

    def all_totals(self):
        """The free part [x] of the totals (FieldAccumulator.all_totals)."""
        return self._free_part(0, self.n_base)


class DeformedMomentAccumulator(DeformedSums, MomentAccumulator):
    """Block sums of the free, first-order and reweighted statistics of every layer of a
    deformed MLP run."""

    tuples = None

    def __init__(self, widths, n_inputs, four_point, coupling, n_blocks=DEFAULT_BLOCKS):
        super().__init__(widths, n_inputs, four_point, n_blocks)
        self._deform(coupling, self.layout.n_stat)

    def merge(self, other):
        return self._add_sums(
            other,
            DeformedMomentAccumulator(
                self.widths,
                self.layout.n_inputs,
                self.layout.four_point,
                self.coupling,
                self.n_blocks,
            ),
        )

    def _layer_totals(self, idx):
        """The free part (MomentAccumulator's estimators)."""
        return self._free_part(idx, self.n_base)
