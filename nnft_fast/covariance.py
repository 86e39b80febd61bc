"""Covariances between estimates, for fits: the named statistics of an ensemble, the
``Covariance`` result of ``Ensemble.covariance`` and the resolution of its arguments.

Every estimate of an ensemble is a function of the same block sums, so the delete-one-block
jackknife that gives its error (docs/estimators.md#jackknife) gives the covariance of any
set of estimates, across entries, statistics and layers, from the same ``g`` replicas
(``accumulators.jackknife_covariance``; docs/estimators.md#covariance).
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# name: (accumulator, field of LayerMoments / LayerNTK): the estimates of the Ensemble
# methods of the same names (Ensemble.covariance; the variables of Ensemble.to_xarray).
STATISTICS = {
    "two_point": ("moments", "two_point"),  # ens.two_point(l)
    "four_point": ("moments", "distinct_connected"),  # ens.four_point(l)
    "four_point_same": ("moments", "same_connected"),  # ens.four_point(l, neurons="same")
    "vertex": ("moments", "vertex"),  # ens.vertex(l)
    "ntk": ("ntk", "theta"),  # ens.ntk(l)
    "ntk_distinct": ("ntk", "theta_off"),  # ens.ntk(l, neurons="distinct")
    "ntk_A": ("ntk", "A"),  # ens.ntk_fluctuations(l).A, likewise B, D, F
    "ntk_B": ("ntk", "B"),
    "ntk_D": ("ntk", "D"),
    "ntk_F": ("ntk", "F"),
}
ACCUMULATORS = ("moments", "ntk")


def _field(name):
    return lambda m: getattr(m, name)


@dataclass(frozen=True)
class Item:
    """One statistic of a covariance: its label, layer, accumulator and function."""

    name: str
    layer: int
    accumulator: str
    statistic: object


def resolve(statistics, layers, moment_layers, n_layers):
    """The ``Item``s ``Ensemble.covariance`` asks for (its docstring lists the forms);
    ``layers`` (None: ``moment_layers`` for moment statistics, 1..n_layers for NTK ones)
    expands the bare names."""
    if isinstance(statistics, (str, tuple)):
        statistics = [statistics]
    if not isinstance(statistics, Iterable):
        raise TypeError(f"statistics must be a list of statistics, got {statistics!r}")
    if isinstance(layers, (int, np.integer)) and not isinstance(layers, bool):
        layers = [layers]
    items = []
    for k, spec in enumerate(statistics):
        if isinstance(spec, str):
            kind = _named(spec)[0]
            default = moment_layers if kind == "moments" else range(1, n_layers + 1)
            chosen = default if layers is None else layers
            items += [_named_item(spec, layer) for layer in chosen]
        elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], str):
            items.append(_named_item(*spec))
        elif isinstance(spec, tuple) and len(spec) in (2, 3) and callable(spec[1]):
            kind = spec[2] if len(spec) == 3 else "moments"
            if kind not in ACCUMULATORS:
                raise ValueError(f"accumulator must be one of {ACCUMULATORS}, got {kind!r}")
            name = getattr(spec[1], "__name__", "statistic")
            name = f"statistic_{k}" if name == "<lambda>" else name
            items.append(Item(name, spec[0], kind, spec[1]))
        else:
            raise TypeError(
                "each statistic must be a name (one of "
                f"{', '.join(STATISTICS)}), a (name, layer) pair, a (layer, function) pair "
                f"or a (layer, function, 'ntk') triple; got {spec!r}"
            )
    if not items:
        raise ValueError("no statistics given")
    return items


def _named(name):
    if name not in STATISTICS:
        raise ValueError(f"unknown statistic {name!r}; known: {', '.join(STATISTICS)}")
    return STATISTICS[name]


def _named_item(name, layer):
    kind, field = _named(name)
    return Item(name, layer, kind, _field(field))


@dataclass(frozen=True)
class Covariance:
    """Estimates flattened into one vector with their full jackknife covariance.

    ``value`` (P,) is the estimates' values, flattened in C order and concatenated in the
    order asked for; ``matrix`` (P, P) their covariance, from the same delete-one-block
    replicas as the errors (``diag(matrix)`` is ``error**2`` to rounding); ``error`` (P,)
    the estimates' own errors, bit for bit; ``estimates`` the ``Estimate`` of each
    statistic (with its ``note``); ``labels`` one ``(name, layer, index)`` per entry;
    ``n_replicas`` the number ``g`` of replicas.
    """

    value: np.ndarray
    matrix: np.ndarray
    error: np.ndarray
    estimates: tuple
    labels: tuple
    n_replicas: int

    @property
    def correlation(self):
        """The correlation matrix C_ij / sqrt(C_ii C_jj)."""
        scale = np.sqrt(np.diag(self.matrix))
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.matrix / np.outer(scale, scale)

    def unflatten(self, vector):
        """``vector`` (P, ...) cut into one array per statistic, each shaped like its
        estimate (e.g. the gvars of ``to_gvar()``)."""
        vector = np.asarray(vector)
        out, start = [], 0
        for estimate in self.estimates:
            size = np.size(estimate.value)
            piece = vector[start : start + size]
            out.append(piece.reshape(np.shape(estimate.value) + vector.shape[1:]))
            start += size
        return out

    def to_gvar(self):
        """The entries as correlated ``gvar.GVar`` s, ``gvar.gvar(value, matrix)`` (P,)
        (the ``labels`` extra)."""
        from .labels import correlated_gvar

        return correlated_gvar(self.value, self.matrix)

    def to_uncertainties(self):
        """The entries as correlated ``uncertainties`` numbers,
        ``uncertainties.correlated_values(value, matrix)`` (P,) (the ``labels`` extra)."""
        from .labels import correlated_uncertainties

        return correlated_uncertainties(self.value, self.matrix)


__all__ = ["Covariance", "STATISTICS"]
