"""Results of a cos-net field run: ``FieldEnsemble``, the ``Ensemble`` of a field on B
points (docs/fields.md).

The field is layer 1 (``two_point(1)``, ``four_point(1)``, ``estimate(1, ...)`` as for an
MLP layer, its n_out outputs the neurons). Estimates that only need some statistics are
formed on the compact statistics vector, so they stay cheap for B in the thousands: the
two-point function (B, B), the translation-averaged G(r) and the connected functions of
the sampled quadruples and sextuples. Errors are the delete-one-block jackknife as
everywhere (docs/estimators.md).
"""

import numpy as np
from scipy import sparse

from .accumulators import jackknife_error
from .ensemble import Ensemble
from .points import pair_index, separations

FIELD_LAYER = 1
DEFAULT_SEPARATION_DECIMALS = 9  # separations equal to this many decimals share a bin


class FieldEnsemble(Ensemble):
    """Streaming statistics of ``n_networks`` cos-net fields on the points X (B x d)."""

    def __repr__(self):
        net = self.network
        return (
            f"FieldEnsemble(n_networks={self.n_networks}, points={self.inputs.shape[0]}, "
            f"dim={net.dim}, width={net.width}, momenta={net.momenta!r}, "
            f"alpha={net.alpha}, amplitude={net.amplitude!r}, seed={self.seed})"
        )

    @property
    def points(self):
        """The point set X, (B, d)."""
        return self.inputs

    @property
    def has_tuples(self):
        return getattr(self.accumulator, "tuples", None) is not None

    @property
    def quadruples(self):
        """The sampled quadruples of point indices, (T4, 4)."""
        return self._tuples().quadruples

    @property
    def sextuples(self):
        """The sampled sextuples of point indices, (T6, 6)."""
        return self._tuples().sextuples

    def _tuples(self):
        if not self.has_tuples:
            raise ValueError(
                "this ensemble holds no tuple statistics (re-analysed from raw outputs)"
            )
        return self.accumulator.tuples

    def _compact_estimate(self, statistic, expand=None, two_point_only=True):
        """Jackknife Estimate of ``statistic(totals (..., n_stat), counts (...))`` on the
        whole statistics vector, expanded by ``expand`` (value and error) if given."""
        acc = self.accumulator
        totals = acc.all_totals() if hasattr(acc, "all_totals") else acc._layer_totals(0)
        total, count, left, left_counts = totals
        with np.errstate(divide="ignore", invalid="ignore"):
            value = statistic(total, count)
            error = jackknife_error(statistic(left, left_counts))
        if expand is not None:
            value, error = expand(value), expand(error)
        return self._estimate_of(FIELD_LAYER, acc, value, error, two_point_only)

    def two_point(self, layer=FIELD_LAYER):
        """G(x_a, x_b) = E[phi(x_a) phi(x_b)] (averaged over the outputs), shape (B, B)."""
        self._check_layer(layer)
        nb = self.inputs.shape[0]
        n_pairs = nb * (nb + 1) // 2
        index = pair_index(nb)
        return self._compact_estimate(
            lambda t, n: t[..., :n_pairs] / np.asarray(n, np.float64)[..., None],
            expand=lambda compact: compact[..., index],
        )

    def four_point(self, layer=FIELD_LAYER, connected=True, neurons="same"):
        """The four-point function of the field on all B^4 index quadruples (B <= 16,
        sampled with 'four_point'), shape (B, B, B, B); neurons="same" is one output's
        (connected: minus the three Wick pairings), "distinct" two different outputs'
        (n_out >= 2)."""
        return super().four_point(layer, connected, neurons)

    def vertex(self, layer=FIELD_LAYER):
        """N times the distinct-output connected four-point function (n_out >= 2)."""
        return super().vertex(layer)

    def two_point_by_separation(self, decimals=DEFAULT_SEPARATION_DECIMALS):
        """The translation-averaged two-point function G(r): the mean of G(x_a, x_b) over
        the pairs a <= b whose separations |x_a - x_b| agree to ``decimals`` decimals.

        Returns (r, Estimate): the separations (R,) in increasing order (each the mean
        separation of its pairs) and G(r) with jackknife errors (R,). On a regular grid
        every separation is shared by many pairs: a free variance reduction.
        """
        if isinstance(decimals, bool) or not isinstance(decimals, (int, np.integer)):
            raise TypeError(f"decimals must be an integer, got {decimals!r}")
        dist = separations(self.inputs)
        keys, group = np.unique(np.round(dist, int(decimals)), return_inverse=True)
        n_pairs = dist.size
        sizes = np.bincount(group, minlength=keys.size).astype(np.float64)
        average = sparse.csr_matrix(
            (1.0 / sizes[group], (np.arange(n_pairs), group)), shape=(n_pairs, keys.size)
        )
        r = np.bincount(group, weights=dist) / sizes

        def statistic(t, n):
            pairs = np.atleast_2d(t[..., :n_pairs] / np.asarray(n, np.float64)[..., None])
            out = np.asarray(pairs @ average)
            return out.reshape(np.shape(t)[:-1] + (keys.size,))

        return r, self._compact_estimate(statistic)

    def to_xarray(self):
        """The field's estimates as an ``xarray.Dataset``: G on (``point_a``,
        ``point_b``), the four-point functions on ``point_a`` .. ``point_d`` (where
        accumulated), G(r) on ``r``, the tuple functions on ``quadruple`` / ``sextuple``,
        with the point coordinates (``position_a``, ...) as coordinates and the
        configuration as attributes (docs/labels.md#fields; the ``labels`` extra)."""
        from .labels import field_dataset

        return field_dataset(self)

    def to_dataframe(self, decimals=DEFAULT_SEPARATION_DECIMALS):
        """G(r) as a ``pandas.DataFrame``: one row per separation (index ``r``), columns
        ``G`` and ``G_err`` (``two_point_by_separation(decimals)``; the ``labels``
        extra)."""
        from .labels import field_frame

        return field_frame(self, decimals)

    def _tuple_estimate(self, rows, connected):
        tuples = self._tuples()
        offset = self.accumulator.layout.n_stat

        def statistic(t, n):
            part = t[..., offset:]
            full = tuples.connected(part, n) if connected else tuples.moments(part, n)
            return full[..., rows]

        return self._compact_estimate(statistic, two_point_only=not connected)

    def connected_four_point(self, connected=True):
        """The four-point function of one output at the sampled quadruples (T4,):
        connected (minus the three pairings, unbiased) or the raw moment."""
        tuples = self._tuples()
        if not len(tuples.quadruples):
            raise ValueError("this ensemble was sampled without quadruples=")
        return self._tuple_estimate(slice(0, len(tuples.quadruples)), connected)

    def connected_six_point(self, connected=True):
        """The six-point function of one output at the sampled sextuples (T6,): connected
        (the sixth cumulant, unbiased products of moments) or the raw moment."""
        tuples = self._tuples()
        if not len(tuples.sextuples):
            raise ValueError("this ensemble was sampled without sextuples=")
        start = len(tuples.quadruples)
        return self._tuple_estimate(slice(start, start + len(tuples.sextuples)), connected)


__all__ = ["FieldEnsemble"]
