"""Streaming, mergeable accumulators of cos-net field statistics (docs/fields.md).

Network e adds its statistics vector [G | Q | GG | tuple statistics] of the field
(``kernels.cpu.field``) to block e mod n_blocks, exactly as ``MomentAccumulator`` does
for the layers of an MLP: the field is layer 1, its n_out outputs the neurons, the
features' count N the fan-in of the vertex. The moment part gives every estimator of
``nnft_fast.accumulators``; the tuple part the connected functions of
``nnft_fast.tuples``.
"""

from .accumulators import DEFAULT_BLOCKS, BlockAccumulator, MomentAccumulator, MomentLayout


class FieldAccumulator(MomentAccumulator):
    """Block sums of [G | Q | GG | tuple statistics] of one field layer."""

    def __init__(self, widths, n_inputs, four_point, tuples, n_blocks=DEFAULT_BLOCKS):
        """widths: (N, n_out); tuples: the run's ``TupleLayout``."""
        self.widths = tuple(int(w) for w in widths)
        self.neurons = self.widths[1:]
        self.layers = (1,)
        self.layout = MomentLayout(int(n_inputs), bool(four_point))
        self.tuples = tuples
        BlockAccumulator.__init__(self, 1, self.layout.n_stat + tuples.n_stat, n_blocks)

    def compatible(self, other):
        return (
            isinstance(other, FieldAccumulator)
            and super().compatible(other)
            and self.tuples.statistics == other.tuples.statistics
        )

    def merge(self, other):
        """New accumulator holding both (disjoint sets of networks)."""
        return self._add_sums(
            other,
            FieldAccumulator(
                self.widths,
                self.layout.n_inputs,
                self.layout.four_point,
                self.tuples,
                self.n_blocks,
            ),
        )

    def _layer_totals(self, idx):
        """The moment part of ``BlockAccumulator._layer_totals``."""
        total, n_total, left, left_counts = super()._layer_totals(idx)
        n_moment = self.layout.n_stat
        return total[:n_moment], n_total, left[:, :n_moment], left_counts

    def all_totals(self):
        """(totals, count, leave-one-block-out totals, counts) of the whole statistics
        vector (moment and tuple parts)."""
        return super()._layer_totals(0)

    def tuple_totals(self):
        """(totals, count, leave-one-block-out totals, counts) of the tuple statistics."""
        total, n_total, left, left_counts = self.all_totals()
        n_moment = self.layout.n_stat
        return total[n_moment:], n_total, left[:, n_moment:], left_counts
