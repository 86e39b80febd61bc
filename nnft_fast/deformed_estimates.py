"""Correlators of deformed ensembles, cos-net fields and MLP layers
(docs/fields.md#deformations): the reweighted estimators at the run's coupling and the
first-order derivatives at zero coupling.

Reweighting (ratio estimators): with w_e = exp(-coupling s_e) (log-sum-exp shifted),
<X>_lambda = sum_e w_e X_e / sum_e w_e for every per-network statistic X; connected
functions are the cumulants of these means (plug-in products: the ratio estimator is
itself biased at O(1/M)). The effective sample size (sum w)^2 / sum w^2 is reported; a
``LowEffectiveSampleWarning`` is issued below ``MIN_EFFECTIVE_FRACTION`` of the networks.

First order: d<X>/dlambda at 0 = -Cov_0(X, s) = -(E[s X] - E[s] E[X]), and for a product of
means the product rule, sum_j (prod_{i != j} E[X_i]) (-E[s X_j] + E[s] E[X_j]); every
product of means over *different* networks (U-statistics, ``nnft_fast.tuples``), so the
first-order estimators are exactly unbiased like the free ones.
"""

import warnings

import numpy as np

from .accumulators import jackknife_error
from .points import pair_index
from .tuples import _moebius, set_partitions

MIN_EFFECTIVE_FRACTION = 0.01  # warn when ESS < 1% of the networks


PAIRINGS = (("ab", "cd"), ("ac", "bd"), ("ad", "bc"))  # the Wick pairings of abcd


class LowEffectiveSampleWarning(RuntimeWarning):
    """Reweighted estimates whose effective sample size is a small fraction of the
    networks: the weights are dominated by a few networks and the errors unreliable."""


def _falling(n, k):
    """n (n - 1) ... (n - k + 1), elementwise."""
    out = np.ones_like(n)
    for j in range(k):
        out = out * (n - j)
    return out


class _View:
    """Shared plumbing: the estimates of one kind on the ensemble's accumulator. ``layer``
    defaults to the deformed layer (a field's 1, an MLP's output layer L)."""

    def __init__(self, ensemble):
        self.ensemble = ensemble
        self.acc = ensemble.accumulator
        self.layout = self.acc.layout
        self.tuples = self.acc.tuples
        self.n_base = self.acc.n_base

    def _layer(self, layer):
        layer = self.ensemble.n_layers if layer is None else layer
        self.ensemble._check_layer(layer)
        return layer

    def _estimate(self, layer, statistic, expand=None):
        total, left = self._totals(layer - 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            value = statistic(*total)
            error = jackknife_error(statistic(*left))
        if expand is not None:
            value, error = expand(value), expand(error)
        return self.ensemble._estimate_of(layer, self.acc, value, error, False)

    def two_point(self, layer=None):
        """The two-point function K(x_a, x_b) = E[z_a z_b], (B, B) (the class docstring
        says at which coupling)."""
        layer = self._layer(layer)
        nb = self.layout.n_inputs
        p = self.layout.n_pairs
        return self._estimate(
            layer,
            lambda *t: self._mean_columns(t, np.arange(p)),
            lambda c: c[..., pair_index(nb)],
        )

    def four_point(self, layer=None, neurons="same"):
        """The connected four-point function on all B^4 index quadruples (B <= 16 for a
        field; sampled with 'four_point'), (B, B, B, B): neurons="same" one neuron's (minus
        the three pairings), "distinct" two different neurons' (minus K_ab K_cd)."""
        layer = self._layer(layer)
        if not self.layout.four_point:
            raise ValueError("this ensemble was sampled without 'four_point' in observables")
        self.ensemble._check_neurons(neurons, layer)
        if neurons == "same":
            return self._estimate(layer, self._full_four_point)
        width = self.acc.neurons[layer - 1]
        return self._estimate(layer, lambda *t: self._distinct_four_point(t, width))

    def vertex(self, layer=None):
        """The Roberts-Yaida vertex V = n_{layer-1} * (distinct connected four-point)."""
        layer = self._layer(layer)
        self.four_point(layer, "distinct")  # validation
        fan_in, width = self.acc.widths[layer - 1], self.acc.neurons[layer - 1]
        return self._estimate(layer, lambda *t: fan_in * self._distinct_four_point(t, width))

    def _full_four_point(self, *totals):
        """Qbar - (KK_abcd + KK_acbd + KK_adbc) of the view's means and pair products."""
        p, q = self.layout.n_pairs, self.layout.n_quads
        _, quad_full, _ = self.layout.full_indices()
        total = self._mean_columns(totals, p + np.arange(q))[..., quad_full]
        for first, second in PAIRINGS:
            total = total - self._pair_product(totals, first, second)
        return total

    def _distinct_four_point(self, totals, width):
        """(n E[GG] - Qbar) / (n - 1) - KK_abcd: two different neurons of n."""
        p, q = self.layout.n_pairs, self.layout.n_quads
        _, quad_full, gg_full = self.layout.full_indices()
        n_gg = p * (p + 1) // 2
        qbar = self._mean_columns(totals, p + np.arange(q))[..., quad_full]
        gg = self._mean_columns(totals, p + q + np.arange(n_gg))[..., gg_full]
        raw = (width * gg - qbar) / (width - 1.0)
        return raw - self._pair_product(totals, *PAIRINGS[0])

    def _tuple_rows(self, order):
        if self.tuples is None:
            raise ValueError("tuple correlators are for cos-net fields sampled with quadruples=")
        count4 = len(self.tuples.quadruples)
        if order == 4:
            if not count4:
                raise ValueError("this ensemble was sampled without quadruples=")
            return range(count4)
        if not len(self.tuples.sextuples):
            raise ValueError("this ensemble was sampled without sextuples=")
        return range(count4, count4 + len(self.tuples.sextuples))

    def connected_four_point(self):
        """The connected four-point function at the sampled quadruples, (T4,)."""
        rows = self._tuple_rows(4)
        return self._estimate(1, lambda *t: self._tuple_connected(t, rows))

    def connected_six_point(self):
        """The connected six-point function at the sampled sextuples, (T6,)."""
        rows = self._tuple_rows(6)
        return self._estimate(1, lambda *t: self._tuple_connected(t, rows))


class Reweighted(_View):
    """Correlators of the deformed ensemble at the run's coupling, by reweighting the free
    ensemble (module docstring). Same methods as the Ensemble."""

    def _totals(self, idx):
        total, left = self.acc.reweighted_totals(idx)
        return (total,), (left,)

    def effective_sample_size(self):
        """(sum w)^2 / sum w^2 over all networks (float)."""
        total, _ = self.acc.reweighted_totals()
        return float(total[0] ** 2 / total[-1])

    def _mean_columns(self, totals, columns):
        (t,) = totals
        return t[..., 1 + np.asarray(columns)] / t[..., :1]

    def _estimate(self, layer, statistic, expand=None):
        ess = self.effective_sample_size()
        n = self.acc.n_networks
        if ess < MIN_EFFECTIVE_FRACTION * n:
            warnings.warn(
                f"reweighting at coupling {self.acc.coupling}: effective sample size "
                f"{ess:.1f} of {n} networks; the estimates rest on a few networks",
                LowEffectiveSampleWarning,
                stacklevel=3,
            )
        return super()._estimate(layer, statistic, expand)

    def _pair_product(self, totals, first, second):
        """<G_P1>_w <G_P2>_w (plug-in) for the pairing (P1, P2) of abcd."""
        pair_full, _, _ = self.layout.full_indices()
        k = self._mean_columns(totals, np.arange(self.layout.n_pairs))[..., pair_full]
        return np.einsum(f"...{first},...{second}->...abcd", k, k)

    def _tuple_connected(self, totals, rows):
        offset = self.layout.n_stat
        index = self.tuples.stat_index
        out = []
        for row in rows:
            value = 0.0
            for coefficient, factors in self.tuples.products[row]:
                columns = [offset + index[(b,)] for b in factors]
                value = value + coefficient * np.prod(self._mean_columns(totals, columns), axis=-1)
            out.append(value)
        return np.stack(out, axis=-1)


class FirstOrder(_View):
    """d/dlambda at lambda = 0 of the deformed ensemble's correlators, from the free
    ensemble (module docstring). Same methods as the Ensemble."""

    def _totals(self, idx):
        total, count, left, left_counts = self.acc.first_order_totals(idx)
        return (total, count), (left, left_counts)

    def _parts(self, t, n):
        """(T_x, T_s, T_sx, count as float with a trailing axis)."""
        nb = self.n_base
        return t[..., :nb], t[..., nb], t[..., nb + 1 :], np.asarray(n, np.float64)

    def _derivative_of_mean(self, t, n, columns):
        tx, ts, tsx, n = self._parts(t, n)
        n = n[..., None]
        x, sx = tx[..., columns], tsx[..., columns]
        return -(sx / n - (ts[..., None] * x - sx) / (n * (n - 1.0)))

    def _mean_columns(self, totals, columns):
        t, n = totals
        return self._derivative_of_mean(t, n, np.asarray(columns))

    def _pair_product(self, totals, first, second):
        """Unbiased d/dlambda of E[G_P1] E[G_P2] for the pairing (P1, P2) of abcd."""
        t, n = totals
        p, q = self.layout.n_pairs, self.layout.n_quads
        pair_full, _, gg_full = self.layout.full_indices()
        tx, ts, tsx, n = self._parts(t, n)
        n = n[..., None, None, None, None]
        ts = ts[..., None, None, None, None]
        g, sg = tx[..., :p][..., pair_full], tsx[..., :p][..., pair_full]
        gg, sgg = tx[..., p + q :][..., gg_full], tsx[..., p + q :][..., gg_full]
        outer = f"...{first},...{second}->...abcd"
        arrange = f"...{first}{second}->...abcd"
        return _d_pairing(
            ts,
            n,
            np.einsum(outer, g, g),
            np.einsum(outer, sg, g),
            np.einsum(outer, g, sg),
            np.einsum(arrange, gg),
            np.einsum(arrange, sgg),
        )

    def _tuple_connected(self, totals, rows):
        t, n = totals
        tx, ts, tsx, n = self._parts(t, n)
        offset = self.layout.n_stat
        index = self.tuples.stat_index

        def group_total(blocks, with_s):
            if not blocks:
                return ts
            column = offset + index[tuple(sorted(blocks))]
            return tsx[..., column] if with_s else tx[..., column]

        def u_statistic(factors):
            """Unbiased prod_j E[f_j] over distinct networks; a factor is (block or None,
            carries s)."""
            k = len(factors)
            acc = 0.0
            for sigma in set_partitions(list(range(k))):
                product = _moebius(sigma)
                for group in sigma:
                    blocks = [factors[j][0] for j in group if factors[j][0] is not None]
                    with_s = any(factors[j][1] for j in group)
                    product = product * group_total(blocks, with_s)
                acc = acc + product
            return acc / _falling(n, k)

        out = []
        for row in rows:
            value = 0.0
            for coefficient, blocks in self.tuples.products[row]:
                for j in range(len(blocks)):
                    plain = [(b, False) for i, b in enumerate(blocks) if i != j]
                    with_sx = plain + [(blocks[j], True)]
                    with_s = plain + [(blocks[j], False), (None, True)]
                    value = value + coefficient * (u_statistic(with_s) - u_statistic(with_sx))
            out.append(value)
        return np.stack(out, axis=-1)


def _d_pairing(ts, n, g_g, sg_g, g_sg, gg, sgg):
    """Unbiased d/dlambda of E[G_P1] E[G_P2] for one pairing (P1, P2) of abcd:
    -(E[s G1] E[G2] - E[s] E[G1] E[G2]) - (E[G1] E[s G2] - E[s] E[G1] E[G2])."""
    m2 = n * (n - 1.0)
    m3 = m2 * (n - 2.0)
    u_s1_2 = (sg_g - sgg) / m2
    u_1_s2 = (g_sg - sgg) / m2
    u_s_1_2 = (ts * g_g - sg_g - g_sg - gg * ts + 2.0 * sgg) / m3
    return -(u_s1_2 - u_s_1_2) - (u_1_s2 - u_s_1_2)


__all__ = ["FirstOrder", "LowEffectiveSampleWarning", "MIN_EFFECTIVE_FRACTION", "Reweighted"]
