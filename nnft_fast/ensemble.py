"""Results of an ensemble run: ``Estimate`` (value + standard error) and ``Ensemble``."""

import sys
import warnings
from dataclasses import dataclass, fields

import numpy as np

from .accumulators import (
    SKEWNESS_LIMIT,
    LayerMoments,
    MomentAccumulator,
    NonFiniteWarning,
    jackknife_covariance,
    jackknife_error_and_skewness,
)
from .covariance import Covariance, resolve
from .deformed_estimates import FirstOrder, Reweighted
from .memory import check_memory, estimate_need
from .ntk import NTKFluctuations

NEURON_CHOICES = ("distinct", "same")
FOUR_POINT_MISSING = "this ensemble was sampled without 'four_point' in observables"


class TooFewNetworksWarning(UserWarning):
    """An estimate's standard error is NaN: the ensemble has too few networks for the
    jackknife (the reason is also the Estimate's ``note``)."""


class UnreliableErrorWarning(UserWarning):
    """An estimate whose jackknife error bars are probably too small: the delete-one-block
    replicas of some entries are strongly skewed (|skewness| > ``SKEWNESS_LIMIT``), the
    mark of heavy-tailed per-network statistics that the ensemble does not sample well
    (docs/estimators.md#coverage; the Estimate's ``note`` says the same)."""


# Modules whose frames a warning skips: the Ensemble methods, the FieldEnsemble methods
# and the labelled exports that call them.
_INTERNAL_MODULES = (__name__, "nnft_fast.field_ensemble", "nnft_fast.labels")


def _outside_stacklevel():
    """``warnings.warn`` stacklevel, from its caller, of the first frame outside
    ``_INTERNAL_MODULES`` (the user's call, however deep the Ensemble methods nest)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__") in _INTERNAL_MODULES:
        frame, level = frame.f_back, level + 1
    return level


def _statistic_array(statistic, moments):
    """``statistic(moments)`` as a float64 array; TypeError for a result that is not real
    numbers (None, strings, complex values, ragged lists)."""
    result = statistic(moments)
    given = None
    try:
        given = np.asarray(result)
        if result is None or given.dtype.kind not in "biufO":
            raise TypeError
        return given.astype(np.float64)
    except (TypeError, ValueError):
        kind = "" if given is None or result is None else f" of {given.dtype} values"
        raise TypeError(
            "statistic must return real numbers (a float or an array), got "
            f"{type(result).__name__}{kind}"
        ) from None


class _TwoPointMoments:
    """``LayerMoments`` of an ensemble sampled without 'four_point': reading a four-point
    field raises a ValueError saying so."""

    def __init__(self, moments):
        self.two_point = moments.two_point

    def __getattr__(self, name):
        if name in {f.name for f in fields(LayerMoments)}:
            raise ValueError(f"{FOUR_POINT_MISSING}: LayerMoments.{name} was not accumulated")
        raise AttributeError(f"'LayerMoments' object has no attribute {name!r}")


@dataclass(frozen=True)
class Estimate:
    """An ensemble estimate with its standard error (same shape, jackknife); ``note`` says
    why errors are NaN when the ensemble is too small for them, or why they are probably
    too small (``UnreliableErrorWarning``), else None."""

    value: np.ndarray
    error: np.ndarray
    note: str = None

    def zscore(self, exact):
        """(value - exact) / error, elementwise."""
        return (self.value - np.asarray(exact)) / self.error

    def to_uncertainties(self):
        """The estimate as ``uncertainties`` numbers, ``unumpy.uarray(value, error)`` (a
        single ``ufloat`` for a scalar estimate; the ``labels`` extra). The entries are
        treated as independent: ``Ensemble.covariance`` gives their correlations."""
        from .labels import uncertainties_array

        return uncertainties_array(self.value, self.error)

    def to_gvar(self):
        """The estimate as ``gvar.gvar(value, error)`` (a single ``GVar`` for a scalar
        estimate; the ``labels`` extra), the entries uncorrelated; for correlated gvars
        use ``Ensemble.covariance(...).to_gvar()``."""
        from .labels import gvar_array

        return gvar_array(self.value, self.error)

    def __repr__(self):
        note = "" if self.note is None else f", note={self.note!r}"
        return f"Estimate(value={self.value!r}, error={self.error!r}{note})"


class Ensemble:
    """Streaming statistics of ``n_networks`` random networks on inputs X (B x n_0).

    Layers are numbered 1..L as in docs/conventions.md#network. All tensors index inputs
    alpha = 0..B-1.

    A deformed run (``nf.sample(..., deformation=...)``) also has ``quadrature``, the
    quadrature rule of its interaction (``nnft_fast.quadrature.QuadratureRule``: nodes
    per dimension, ``error_bound``; None without a local interaction), and the views
    ``reweighted`` and ``first_order``.

    Provenance: ``backend``, the backend(s) that computed the networks ("cpu", "cuda" or
    "cpu,cuda"; the networks are the same on both; None when unknown, e.g. an Ensemble
    built from another library's samples); ``store_path``, the store file it was read
    from (None for an ensemble computed in memory); ``target_networks``, the networks
    that store's run aims at (its configured n_networks: more than ``n_networks`` while
    the run is incomplete; None without a store); ``store_config``, that store's
    configuration (its header's ``config``, a dict; None without a store).
    """

    def __init__(
        self,
        network,
        inputs,
        seed,
        method,
        dtype,
        accumulator: MomentAccumulator,
        network_ranges=(),
        ntk_accumulator=None,
        *,
        backend=None,
        store_path=None,
        target_networks=None,
    ):
        """network_ranges: the (start, stop) index ranges of the networks it holds;
        ntk_accumulator: an ``NTKAccumulator`` when 'ntk' was among the observables;
        backend, store_path, target_networks: the provenance (class docstring)."""
        self.network = network
        self.inputs = inputs
        self.seed = seed
        self.method = method
        self.dtype = np.dtype(dtype)
        self.accumulator = accumulator
        self.network_ranges = tuple(sorted(network_ranges))
        self.ntk_accumulator = ntk_accumulator
        self.backend = backend
        self.store_path = store_path
        self.target_networks = target_networks

    quadrature = None
    store_config = None

    @property
    def n_networks(self):
        return self.accumulator.n_networks

    @property
    def is_deformed(self):
        """Whether the run carried a deformation (``nf.sample(..., deformation=...)``)."""
        return hasattr(self.accumulator, "reweighted_totals")

    def _deformed(self):
        if not self.is_deformed:
            raise ValueError("this ensemble was sampled without deformation=")

    @property
    def coupling(self):
        """The deformation's coupling (reweighted estimates are at this value)."""
        self._deformed()
        return self.accumulator.coupling

    @property
    def reweighted(self):
        """The correlators of the deformed ensemble at ``coupling``, by reweighting these
        free networks with exp(-S_int) (``deformed_estimates.Reweighted``: two_point,
        four_point, vertex, connected_four_point, connected_six_point,
        effective_sample_size; every layer, by default the deformed one)."""
        self._deformed()
        return Reweighted(self)

    @property
    def first_order(self):
        """d/dlambda at lambda = 0 of the deformed correlators (``deformed_estimates.
        FirstOrder``: the same methods), unbiased, from these free networks."""
        self._deformed()
        return FirstOrder(self)

    @property
    def nonfinite(self):
        """Per layer (entry l - 1), how many networks went non-finite (inf or NaN) at layer
        l or an earlier one (``nnft_fast.accumulators``); estimates there warn."""
        return self.accumulator.nonfinite.copy()

    @property
    def first_network(self):
        """Lowest network index held (0 for an empty set of ranges)."""
        return self.network_ranges[0][0] if self.network_ranges else 0

    @property
    def n_layers(self):
        return self.network.n_layers

    @property
    def has_four_point(self):
        return self.accumulator.layout.four_point

    def __repr__(self):
        return (
            f"Ensemble(n_networks={self.n_networks}, widths={self.network.widths}, "
            f"activation={self.network.activation.name!r}, init={self.network.init!r}, "
            f"method={self.method!r}, seed={self.seed})"
        )

    def _check_layer(self, layer):
        if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an integer 1..{self.n_layers}, got {layer!r}")
        if not 1 <= layer <= self.n_layers:
            raise ValueError(f"layer must be in 1..{self.n_layers}, got {layer}")

    @property
    def has_ntk(self):
        return self.ntk_accumulator is not None

    def _jackknife(self, layer, accumulator, statistic):
        [(value, replica_values)], two_point_only = self._replicas(layer, accumulator, [statistic])
        with np.errstate(divide="ignore", invalid="ignore"):
            error, skewness = jackknife_error_and_skewness(replica_values)
        return self._estimate_of(layer, accumulator, value, error, two_point_only, skewness)

    def _replicas(self, layer, accumulator, statistics):
        """([(value, delete-one-block replica values (g, ...)) of each statistic of
        ``layer``'s moments in ``accumulator``], whether only two-point moments exist):
        the layer's moments and their replicas are formed once for all of them."""
        self._check_layer(layer)
        for statistic in statistics:
            if not callable(statistic):
                raise TypeError(
                    "statistic must be a function of the layer's moments returning "
                    f"an array, got {type(statistic).__name__}"
                )
        two_point_only = accumulator is self.accumulator and not self.has_four_point
        if not two_point_only:  # (B, B, B, B) tensors for every jackknife replica
            n_replicas = int(np.count_nonzero(accumulator.block_counts))
            check_memory([estimate_need(n_replicas, self.inputs.shape[0], layer)], "this estimate")
        out = []
        with np.errstate(divide="ignore", invalid="ignore"):
            full, replicas = accumulator.layer_with_jackknife(layer)
            if two_point_only:
                full, replicas = _TwoPointMoments(full), _TwoPointMoments(replicas)
            g = int(np.count_nonzero(accumulator.block_counts))
            for statistic in statistics:
                value = _statistic_array(statistic, full)
                replica_values = _statistic_array(statistic, replicas)
                if replica_values.shape != (g,) + value.shape:
                    raise ValueError(
                        "statistic must act elementwise on the moments' leading "
                        "replica axis (index with ... first): it gave shape "
                        f"{value.shape} for the ensemble but {replica_values.shape} "
                        f"for its {g} jackknife replicas"
                    )
                out.append((value, replica_values))
        return out, two_point_only

    def _estimate_of(self, layer, accumulator, value, error, two_point_only, skewness=None):
        """The Estimate (value, jackknife error) of ``layer``, with its warnings: non-finite
        networks or values, too few networks for error bars, and (given the ``skewness``
        of the jackknife replicas) unreliable error bars; the last two set its ``note``."""
        self._warn_nonfinite(layer, accumulator, value)
        notes = []
        if np.any(np.isnan(error) & ~np.isnan(value)):
            note = self._too_few_networks(accumulator, two_point_only)
            if note is not None:
                warnings.warn(note, TooFewNetworksWarning, stacklevel=_outside_stacklevel())
                notes.append(note)
        if skewness is not None:
            note = self._skewed_replicas(layer, accumulator, value, error, skewness)
            if note is not None:
                warnings.warn(note, UnreliableErrorWarning, stacklevel=_outside_stacklevel())
                notes.append(note)
        return Estimate(value, error, "; ".join(notes) if notes else None)

    def _skewed_replicas(self, layer, accumulator, value, error, skewness):
        """Why the error bars of ``layer``'s estimate are unreliable, or None: entries
        whose jackknife replicas have |skewness| > SKEWNESS_LIMIT (heavy tails; entries
        whose error is at the rounding level of the estimate's values are not judged)."""
        with np.errstate(invalid="ignore"):
            size = np.abs(value)
            finite = size[np.isfinite(size)]
            floor = 1e-10 * np.maximum(size, finite.max() if finite.size else 0.0)
            judged = np.isfinite(error) & (error > floor)
            bad = judged & (np.abs(skewness) > SKEWNESS_LIMIT)
        n_bad = int(np.count_nonzero(bad))
        if not n_bad:
            return None
        worst = float(np.max(np.abs(skewness[bad])))
        g = int(np.count_nonzero(accumulator.block_counts))
        if np.size(value) == 1:
            what = "the jackknife error bar is probably too small: its"
        else:
            what = (
                f"the jackknife error bars of {n_bad} of {np.size(value)} entries are "
                "probably too small: their"
            )
        return (
            f"layer {layer}: {what} {g} delete-one-block replicas are skewed (|skewness| "
            f"up to {worst:.2g} > {SKEWNESS_LIMIT:g}), the mark of heavy-tailed "
            f"per-network statistics that these {self.n_networks} networks sample poorly, "
            "so that value +- error covers the answer less often than 68% "
            "(docs/estimators.md#coverage); sample more networks"
        )

    def _too_few_networks(self, accumulator, two_point_only):
        """Why the jackknife has no error bars here, or None: it needs networks in at least
        2 blocks, and the unbiased products of the four-point and NTK estimators (over
        N (N - 1)) 2 networks in every delete-one-block replica (3 consecutive networks)."""
        counts = accumulator.block_counts[accumulator.block_counts > 0]
        if counts.size < 2:
            return (
                f"no error bars: the jackknife needs networks in at least 2 of its "
                f"{accumulator.n_blocks} blocks; these {self.n_networks} networks "
                "fill one"
            )
        if not two_point_only and self.n_networks - counts.max() < 2:
            return (
                f"no error bars from {self.n_networks} networks: the four-point and NTK "
                "estimators need 2 networks in every delete-one-block jackknife "
                "replica; sample at least 3 networks"
            )
        return None

    def _warn_nonfinite(self, layer, accumulator, value):
        """NonFiniteWarning for an estimate at a layer where networks went non-finite, or
        with a non-finite value although none did (overflow or 0/0 in the estimator)."""
        bad = int(accumulator.nonfinite[layer - 1])
        if bad:
            message = (
                f"layer {layer}: {bad} of {accumulator.n_networks} networks went "
                "non-finite (inf or NaN) at this layer or an earlier one; the estimate "
                "includes them"
            )
        elif not np.all(np.isfinite(value)):
            message = (
                f"layer {layer}: the estimate is not finite although every network's "
                "statistics are (overflow or 0/0 in the estimator)"
            )
        else:
            return
        warnings.warn(message, NonFiniteWarning, stacklevel=_outside_stacklevel())

    def estimate(self, layer, statistic):
        """Jackknife estimate of any smooth ``statistic(LayerMoments) -> array``.

        Example: the kurtosis E[z^4]/E[z^2]^2 of input 0,
        ``ens.estimate(3, lambda m: m.same_raw[..., 0, 0, 0, 0] / m.two_point[..., 0, 0]**2)``.
        Arrays in ``LayerMoments`` carry a leading replica axis inside the jackknife, so
        index with ``...`` first. Without 'four_point' in the observables only
        ``two_point`` exists (the other fields raise a ValueError).

        Error bars need networks in 2 or more of the jackknife's blocks, and for the
        four-point and NTK statistics 3 or more networks: with fewer, the value is still
        estimated, its error is NaN, the Estimate's ``note`` says why and a
        ``TooFewNetworksWarning`` is issued. Estimates of (B, B, B, B) tensors whose
        replicas would not fit in memory are refused (ValueError).
        """
        return self._jackknife(layer, self.accumulator, statistic)

    def estimate_ntk(self, layer, statistic):
        """Jackknife estimate of any smooth ``statistic(LayerNTK) -> array`` (fields theta,
        theta_off, A, B, D, F, with a leading replica axis inside the jackknife), e.g. the
        normalised fluctuation ``lambda m: m.A[..., 0, 0, 0, 0] / m.theta[..., 0, 0]**2``."""
        self._ntk_available()
        return self._jackknife(layer, self.ntk_accumulator, statistic)

    def _ntk_available(self):
        if not self.has_ntk:
            raise ValueError("this ensemble was sampled without 'ntk' in observables")

    def ntk(self, layer, neurons="same"):
        """Mean NTK at ``layer``, shape (B, B): neurons="same" gives Theta = E[H_ii];
        "distinct" gives E[H_ij], i != j (zero in law; a check)."""
        if not isinstance(neurons, str) or neurons not in NEURON_CHOICES:
            raise ValueError(f"neurons must be one of {NEURON_CHOICES}, got {neurons!r}")
        return self.estimate_ntk(layer, lambda m: m.theta if neurons == "same" else m.theta_off)

    def ntk_fluctuations(self, layer):
        """Roberts-Yaida A, B (NTK-NTK) and D, F (NTK-preactivation) at ``layer``, each an
        Estimate of shape (B, B, B, B), normalised by n_{layer-1} like the vertex."""
        return NTKFluctuations(
            *(self.estimate_ntk(layer, lambda m, f=f: getattr(m, f)) for f in ("A", "B", "D", "F"))
        )

    def _four_point_available(self):
        if not self.has_four_point:
            raise ValueError(FOUR_POINT_MISSING)

    def two_point(self, layer):
        """K_ab = E[z_{i;a} z_{i;b}], shape (B, B)."""
        return self.estimate(layer, lambda m: m.two_point)

    def four_point(self, layer, connected=True, neurons="distinct"):
        """Four-point function at ``layer``, shape (B, B, B, B).

        neurons="distinct": E[z_{i;a} z_{i;b} z_{j;c} z_{j;d}], i != j (minus K_ab K_cd if
        connected); neurons="same": E[z_{i;a} z_{i;b} z_{i;c} z_{i;d}] (minus the three
        Wick pairings if connected).
        """
        self._four_point_available()
        if not isinstance(connected, (bool, np.bool_)):
            raise TypeError("connected must be True or False")
        self._check_layer(layer)
        self._check_neurons(neurons, layer)
        field = f"{neurons}_{'connected' if connected else 'raw'}"
        return self.estimate(layer, lambda m: getattr(m, field))

    def _check_neurons(self, neurons, layer):
        """ValueError unless ``neurons`` is one of NEURON_CHOICES ("distinct" needs two
        neurons at ``layer``)."""
        if not isinstance(neurons, str) or neurons not in NEURON_CHOICES:
            raise ValueError(f"neurons must be one of {NEURON_CHOICES}, got {neurons!r}")
        if neurons == "distinct" and self.accumulator.neurons[layer - 1] < 2:
            raise ValueError(f"layer {layer} has one neuron: no distinct-neuron correlator")

    def vertex(self, layer):
        """Roberts-Yaida four-point vertex V = n_{layer-1} * (distinct connected)."""
        self.four_point(layer)  # validation
        return self.estimate(layer, lambda m: m.vertex)

    def covariance(self, statistics, layers=None):
        """Jackknife covariance of several estimates, across entries, statistics and
        layers, flattened into one vector: the input of a correlated fit.

        Parameters
        ----------
        statistics : list
            Each item one of: a name (``"two_point"``, ``"four_point"``,
            ``"four_point_same"``, ``"vertex"``, ``"ntk"``, ``"ntk_distinct"``,
            ``"ntk_A"``, ``"ntk_B"``, ``"ntk_D"``, ``"ntk_F"``: the estimates of the
            methods of the same names, at every layer of ``layers``); a
            ``(name, layer)`` pair; a ``(layer, function)`` pair, ``function`` of the
            layer's ``LayerMoments`` as in ``estimate``; or ``(layer, function, "ntk")``,
            a function of its ``LayerNTK`` as in ``estimate_ntk``.
        layers : int or list of int, optional
            The layers of the bare names (default: every layer holding data).

        Returns
        -------
        Covariance
            ``value`` (P,), ``matrix`` (P, P), ``error`` (P,) (the estimates' own errors),
            ``estimates``, ``labels`` (one ``(name, layer, index)`` per entry),
            ``to_gvar()``, ``to_uncertainties()``, ``unflatten(vector)``.

        Notes
        -----
        With ``g`` the non-empty blocks and ``x_r`` the flattened estimates on the block
        sums with block ``r`` left out (the replicas of every error bar),
        ``C = (g - 1)/g sum_r (x_r - mean(x))(x_r - mean(x))^T``, so ``diag(C)`` is
        ``error**2`` to rounding (docs/estimators.md#covariance). Moment and NTK
        statistics share the replicas: the same networks fill the same blocks. Each
        estimate warns as its method does.

        Examples
        --------
        ``ens.covariance([("two_point", 3), ("vertex", 3)])``;
        ``ens.covariance(["two_point"], layers=[2, 3]).to_gvar()``;
        ``ens.covariance([(l, lambda m: m.two_point[..., 0, 0]) for l in (1, 2, 3)])``.
        """
        moment_layers = tuple(getattr(self.accumulator, "layers", range(1, self.n_layers + 1)))
        items = resolve(statistics, layers, moment_layers, self.n_layers)
        accumulators = {"moments": self.accumulator}
        if any(item.accumulator == "ntk" for item in items):
            self._ntk_available()
            accumulators["ntk"] = self.ntk_accumulator
            if not np.array_equal(self.accumulator.block_counts, self.ntk_accumulator.block_counts):
                raise ValueError("the moment and NTK accumulators hold different blocks")
        computed = {}  # (layer, accumulator) -> replicas of its items, formed once
        for key in dict.fromkeys((item.layer, item.accumulator) for item in items):
            chosen = [item.statistic for item in items if (item.layer, item.accumulator) == key]
            computed[key] = iter(self._replicas(key[0], accumulators[key[1]], chosen)[0])
        estimates, labels, columns = [], [], []
        for item in items:
            value, replica_values = next(computed[(item.layer, item.accumulator)])
            accumulator = accumulators[item.accumulator]
            two_point_only = item.accumulator == "moments" and not self.has_four_point
            with np.errstate(divide="ignore", invalid="ignore"):
                error, skewness = jackknife_error_and_skewness(replica_values)
            estimates.append(
                self._estimate_of(item.layer, accumulator, value, error, two_point_only, skewness)
            )
            labels += [(item.name, item.layer, index) for index in np.ndindex(value.shape)]
            columns.append(replica_values.reshape(replica_values.shape[0], -1))
        replicas = np.concatenate(columns, axis=1)
        with np.errstate(invalid="ignore"):
            matrix = jackknife_covariance(replicas)
        return Covariance(
            value=np.concatenate([np.ravel(e.value) for e in estimates]),
            matrix=matrix,
            error=np.concatenate([np.ravel(e.error) for e in estimates]),
            estimates=tuple(estimates),
            labels=tuple(labels),
            n_replicas=replicas.shape[0],
        )

    def to_xarray(self):
        """The estimates of every layer as an ``xarray.Dataset`` with named dimensions
        (``layer``, ``alpha``, ``beta``, ``gamma``, ``delta``), values and errors, and
        the configuration and provenance as attributes (docs/labels.md; the ``labels``
        extra: ``pip install 'nnft_fast[labels]'``)."""
        from .labels import ensemble_dataset

        return ensemble_dataset(self)

    def to_dataframe(self, alpha=0):
        """One row per layer of scalar summaries at input ``alpha`` (K, V/K^2, Theta and
        their errors, the width), a ``pandas.DataFrame`` indexed by ``layer``
        (docs/labels.md; the ``labels`` extra)."""
        from .labels import ensemble_frame

        return ensemble_frame(self, alpha)

    def merge(self, other):
        """Ensemble over the union of two disjoint sets of networks of the same run.

        Provenance of the union: ``backend`` lists the backends of both ("cpu,cuda"; None
        if either is unknown); ``store_path`` is kept where both come from the same file,
        else None; ``target_networks`` is None unless both have one: then the common
        target of pieces of one file's run, else the sum (two runs aiming at t1 and t2
        networks together aim at t1 + t2).
        """
        if not isinstance(other, type(self)):
            raise TypeError(f"can only merge with another {type(self).__name__}")
        if (
            self.network != other.network
            or self.seed != other.seed
            or not np.array_equal(self.inputs, other.inputs)
            or self.method != other.method
            or self.dtype != other.dtype
        ):
            raise ValueError(
                "cannot merge ensembles of different networks, inputs, seeds, methods or dtypes"
            )
        ranges = sorted(self.network_ranges + other.network_ranges)
        for (_, stop), (start, _) in zip(ranges, ranges[1:]):
            if start < stop:
                raise ValueError(
                    f"cannot merge ensembles that share networks (index ranges {ranges} overlap)"
                )
        if self.has_ntk != other.has_ntk:
            raise ValueError("cannot merge an ensemble with NTK statistics and one without")
        ntk = self.ntk_accumulator.merge(other.ntk_accumulator) if self.has_ntk else None
        backend = None
        if self.backend is not None and other.backend is not None:
            backend = ",".join(sorted(set(self.backend.split(",")) | set(other.backend.split(","))))
        store_path = self.store_path if self.store_path == other.store_path else None
        targets = (self.target_networks, other.target_networks)
        target = None
        if None not in targets:
            target = sum(targets) if store_path is None else max(targets)
        merged = type(self)(
            self.network,
            self.inputs,
            self.seed,
            self.method,
            self.dtype,
            self.accumulator.merge(other.accumulator),
            ranges,
            ntk,
            backend=backend,
            store_path=store_path,
            target_networks=target,
        )
        merged.quadrature = self.quadrature
        if store_path is not None and self.store_config == other.store_config:
            merged.store_config = self.store_config
        return merged


__all__ = [
    "Estimate",
    "Ensemble",
    "LayerMoments",
    "TooFewNetworksWarning",
    "UnreliableErrorWarning",
]
