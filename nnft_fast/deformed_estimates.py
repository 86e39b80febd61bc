"""Correlators of deformed cos-net ensembles (docs/fields.md#deformations): the reweighted
estimators at the run's coupling and the first-order derivatives at zero coupling.

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
    """Shared plumbing: the estimates of one kind on the ensemble's accumulator."""

    def __init__(self, ensemble):
        self.ensemble = ensemble
        self.acc = ensemble.accumulator
        self.layout = self.acc.layout
        self.tuples = self.acc.tuples
        self.n_base = self.acc.n_base

    def _estimate(self, statistic, expand=None):
        total, left = self._totals()
        with np.errstate(divide="ignore", invalid="ignore"):
            value = statistic(*total)
            error = jackknife_error(statistic(*left))
        if expand is not None:
            value, error = expand(value), expand(error)
        return self.ensemble._estimate_of(1, self.acc, value, error, False)

    def two_point(self, layer=1):
        """The two-point function G(x_a, x_b), (B, B) (see the class docstring)."""
        self.ensemble._check_layer(layer)
        nb = self.layout.n_inputs
        p = self.layout.n_pairs
        return self._estimate(
            lambda *t: self._mean_columns(t, np.arange(p)), lambda c: c[..., pair_index(nb)]
        )

    def four_point(self, layer=1):
        """The connected four-point function on all B^4 index quadruples (B <= 16, sampled
        with 'four_point'), (B, B, B, B)."""
        self.ensemble._check_layer(layer)
        if not self.layout.four_point:
            raise ValueError("this ensemble was sampled without 'four_point' in observables")
        return self._estimate(self._full_four_point)

    def _tuple_rows(self, order):
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
        return self._estimate(lambda *t: self._tuple_connected(t, rows))

    def connected_six_point(self):
        """The connected six-point function at the sampled sextuples, (T6,)."""
        rows = self._tuple_rows(6)
        return self._estimate(lambda *t: self._tuple_connected(t, rows))

    def _quad_indices(self):
        pair_full, quad_full, _ = self.layout.full_indices()
        return pair_full, quad_full


class Reweighted(_View):
    """Correlators of the deformed ensemble at the run's coupling, by reweighting the free
    ensemble (module docstring). Same methods as ``FieldEnsemble``."""

    def _totals(self):
        total, left = self.acc.reweighted_totals()
        return (total,), (left,)

    def effective_sample_size(self):
        """(sum w)^2 / sum w^2 over all networks (float)."""
        total, _ = self.acc.reweighted_totals()
        return float(total[0] ** 2 / total[-1])

    def _mean_columns(self, totals, columns):
        (t,) = totals
        return t[..., 1 + np.asarray(columns)] / t[..., :1]

    def _estimate(self, statistic, expand=None):
        ess = self.effective_sample_size()
        n = self.acc.n_networks
        if ess < MIN_EFFECTIVE_FRACTION * n:
            warnings.warn(
                f"reweighting at coupling {self.acc.coupling}: effective sample size "
                f"{ess:.1f} of {n} networks; the estimates rest on a few networks",
                LowEffectiveSampleWarning,
                stacklevel=3,
            )
        return super()._estimate(statistic, expand)

    def _full_four_point(self, t):
        p, q = self.layout.n_pairs, self.layout.n_quads
        pair_full, quad_full = self._quad_indices()
        k = self._mean_columns((t,), np.arange(p))[..., pair_full]
        qbar = self._mean_columns((t,), p + np.arange(q))[..., quad_full]
        return (
            qbar
            - np.einsum("...ab,...cd->...abcd", k, k)
            - np.einsum("...ac,...bd->...abcd", k, k)
            - np.einsum("...ad,...bc->...abcd", k, k)
        )

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
    ensemble (module docstring). Same methods as ``FieldEnsemble``."""

    def _totals(self):
        total, count, left, left_counts = self.acc.first_order_totals()
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

    def _full_four_point(self, t, n):
        """d/dlambda of Qbar - (KK_abcd + KK_acbd + KK_adbc), every product unbiased."""
        p, q = self.layout.n_pairs, self.layout.n_quads
        pair_full, quad_full, gg_full = self.layout.full_indices()
        d_q = self._derivative_of_mean(t, n, p + np.arange(q))[..., quad_full]
        tx, ts, tsx, n = self._parts(t, n)
        n = n[..., None, None, None, None]
        ts = ts[..., None, None, None, None]
        g, sg = tx[..., :p][..., pair_full], tsx[..., :p][..., pair_full]
        gg, sgg = tx[..., p + q :][..., gg_full], tsx[..., p + q :][..., gg_full]
        total = d_q
        for first, second in (("ab", "cd"), ("ac", "bd"), ("ad", "bc")):
            outer = f"...{first},...{second}->...abcd"
            arrange = f"...{first}{second}->...abcd"
            total = total - _d_pairing(
                ts,
                n,
                np.einsum(outer, g, g),
                np.einsum(outer, sg, g),
                np.einsum(outer, g, sg),
                np.einsum(arrange, gg),
                np.einsum(arrange, sgg),
            )
        return total

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
