"""Locality of the couplings of a deformed cos-net field on the quadrature nodes
(docs/exact-results.md#deformations-and-locality).

A local deformation S_int = (lambda / 4!) int_V phi^4 d^d y is, on the Gauss-Legendre rule
of the run (``deformation.rule(net)``: nodes y_q, weights w_q), exactly

    S_int = (lambda / 4!) sum_q w_q phi(y_q)^4.

Sample the field ON the nodes (X = rule.points, B = Q) and read its Edgeworth action off
the correlators (``theory.couplings``): S = phi M phi / 2 + lam_abcd phi^4 / 4! + lam6 phi^6
/ 6! + ..., with

    lam_abcd = -G4c . (G^{-1})^{x4},    lam6_abcdef = -G6c . (G^{-1})^{x6} + O(G4c^2).

At first order in lambda around the free infinite-width (Gaussian) field, G4c = lambda
dG4c/dlambda = -lambda sum_q w_q G_aq G_bq G_cq G_dq (tree level) and G6c = O(lambda^2)
(one quartic vertex cannot connect six legs), so

    lambda (-dG4c/dlambda) . (G^{-1})^{x4} = lambda w_a delta_abcd,
    lambda (-dG6c/dlambda) . (G^{-1})^{x6} = 0:

the reconstructed couplings are those of the action, local (diagonal on the nodes) with
the quadrature weights. At width N the first-order correlators carry 1/N corrections
(from the free cumulants, e.g. kappa4(a, b, c, y) G_dy G_ey G_fy in dG6c/dlambda), which
these leading-order couplings then show as non-local remainders of order 1/N. The free
cos-net's own Edgeworth coupling (-G4c . (G^{-1})^{x4} of the free ensemble at width N)
is not local at all: cosine features couple every pair of points.

The derivatives are ``FieldEnsemble.first_order``'s unbiased estimators, G the free
two-point function measured on the same networks (or an exact one, ``two_point=``); the
whole map, G^{-1} included, is recomputed on every delete-one-block jackknife replica, so
the errors carry all correlations.
"""

import itertools
from dataclasses import dataclass

import numpy as np

from ..ensemble import Estimate
from ..field_ensemble import FieldEnsemble

MAX_TENSOR_ENTRIES = 1 << 24  # replicas x B^order entries of one coupling estimate
POINTS_RTOL = 1e-12  # ensemble points against the rule's nodes

__all__ = [
    "Locality",
    "coupling_locality",
    "local_quartic_coupling",
    "node_sextuples",
    "quartic_coupling_on_nodes",
    "sextic_coupling_on_nodes",
]


@dataclass(frozen=True)
class Locality:
    """A coupling tensor on the nodes and how local it is.

    Attributes
    ----------
    coupling : Estimate
        The coupling, (B,) * order.
    diagonal : Estimate
        Its entries with all indices equal, (B,).
    off_diagonal_weight : Estimate
        sum over entries not all equal of |lam|^2 over sum of all |lam|^2 (scalar, with
        its jackknife error): 0 for a local coupling; noise alone makes it positive.
    max_off_diagonal_z : float
        max |lam| / error over the entries whose indices are not all equal.
    """

    coupling: Estimate
    diagonal: Estimate
    off_diagonal_weight: Estimate
    max_off_diagonal_z: float


# ------------------------------------------------------------------------ helpers


def node_sextuples(n_points):
    """Every sorted sextuple (a <= b <= ... <= f) of the point indices 0..n_points-1,
    (T, 6) int64: sample with ``sextuples=node_sextuples(B)`` so that the full six-point
    tensor exists for ``sextic_coupling_on_nodes`` (T = C(B + 5, 6): 84 for B = 4)."""
    if isinstance(n_points, bool) or not isinstance(n_points, (int, np.integer)):
        raise TypeError(f"n_points must be an integer, got {n_points!r}")
    if n_points < 1:
        raise ValueError(f"n_points must be >= 1, got {n_points}")
    rows = list(itertools.combinations_with_replacement(range(int(n_points)), 6))
    return np.array(rows, np.int64).reshape(-1, 6)


def local_quartic_coupling(rule, coupling):
    """coupling * w_a delta_abcd (Q, Q, Q, Q): the quartic coupling of
    (coupling / 4!) sum_q w_q phi(y_q)^4 on the rule's nodes."""
    w = np.asarray(rule.weights, np.float64)
    out = np.zeros((w.size,) * 4)
    idx = np.arange(w.size)
    out[idx, idx, idx, idx] = float(coupling) * w
    return out


def _check_field_ensemble(ensemble):
    if not isinstance(ensemble, FieldEnsemble):
        raise TypeError(f"ensemble must be an nf.FieldEnsemble, got {type(ensemble).__name__}")


def _check_on_nodes(ensemble, rule):
    points = np.asarray(ensemble.points, np.float64)
    nodes = np.asarray(rule.points, np.float64)
    scale = max(1.0, float(np.max(np.abs(nodes))))
    if points.shape != nodes.shape or not np.allclose(
        points, nodes, rtol=0.0, atol=POINTS_RTOL * scale
    ):
        raise ValueError(
            "the ensemble must be sampled on the rule's nodes in their order "
            f"(X = rule.points, shape {nodes.shape}); got points of shape {points.shape}"
        )


def _inverse_two_point(two_point, n_points):
    """None (measured) or the checked inverse of a given (B, B) two-point function."""
    if two_point is None:
        return None
    g = np.asarray(two_point, np.float64)
    if g.shape != (n_points, n_points) or not np.all(np.isfinite(g)):
        raise ValueError(
            f"two_point must be a finite ({n_points}, {n_points}) matrix, got shape {g.shape}"
        )
    try:
        np.linalg.cholesky(0.5 * (g + g.T))
    except np.linalg.LinAlgError:
        raise ValueError("two_point must be symmetric positive definite") from None
    gi = np.linalg.inv(g)
    return 0.5 * (gi + gi.T)


def _batched_inverse(g):
    gi = np.linalg.inv(g)
    return 0.5 * (gi + np.swapaxes(gi, -1, -2))


def _lower(gi, t, order):
    """t_{e1..ek} Gi_{e1 a1} ... Gi_{ek ak} over the last ``order`` axes (Gi symmetric,
    leading axes broadcast): each step contracts the last axis and moves the result to
    the front of the tensor axes."""
    lead = t.ndim - order
    b = gi.shape[-1]
    gi = gi.reshape(gi.shape[:-2] + (1,) * (order - 2) + (b, b))
    for _ in range(order):
        t = np.moveaxis(t @ gi, -1, lead)
    return t


def _check_size(ensemble, b, order):
    replicas = ensemble.accumulator.n_blocks + 1
    if replicas * b**order > MAX_TENSOR_ENTRIES:
        raise ValueError(
            f"the order-{order} coupling on B = {b} points needs {replicas} x {b}^{order} "
            f"entries (more than {MAX_TENSOR_ENTRIES}): use fewer nodes"
        )


def _sextuple_expansion(tuples, b):
    """Index (B,)*6 into the sampled sextuples' rows, every multiset needed."""
    rows = {tuple(sorted(int(p) for p in t)): i for i, t in enumerate(tuples)}
    full = np.empty((b,) * 6, np.int64)
    for index in itertools.product(range(b), repeat=6):
        key = tuple(sorted(index))
        if key not in rows:
            raise ValueError(
                "the sextic coupling needs the six-point function on every sextuple of the "
                f"nodes: sample with sextuples=node_sextuples({b}) (missing {key})"
            )
        full[index] = rows[key]
    return full


def _diagonal(tensor, order):
    b = tensor.shape[-1]
    idx = np.arange(b)
    return tensor[(Ellipsis,) + (idx,) * order]


def _off_diagonal_mask(b, order):
    mask = np.ones((b,) * order, bool)
    idx = np.arange(b)
    mask[(idx,) * order] = False
    return mask


def _with_weight(coupling, order):
    """(..., B^order + 1): the flattened coupling and its off-diagonal weight."""
    b = coupling.shape[-1]
    mask = _off_diagonal_mask(b, order)
    square = coupling * coupling
    lead = coupling.shape[:-order]
    flat = square.reshape(lead + (-1,))
    weight = flat[..., mask.ravel()].sum(axis=-1) / flat.sum(axis=-1)
    return np.concatenate([coupling.reshape(lead + (-1,)), weight[..., None]], axis=-1)


def _locality(est, b, order):
    split = b**order
    shape = (b,) * order
    coupling = Estimate(
        est.value[:split].reshape(shape), est.error[:split].reshape(shape), est.note
    )
    weight = Estimate(est.value[split], est.error[split], est.note)
    diagonal = Estimate(_diagonal(coupling.value, order), _diagonal(coupling.error, order))
    mask = _off_diagonal_mask(b, order)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(coupling.value[mask]) / coupling.error[mask]
    return Locality(coupling, diagonal, weight, float(np.max(z)) if z.size else 0.0)


# ------------------------------------------------------------------------ couplings


def _first_order(ensemble, rule, order, two_point):
    """Locality of the first-order coupling of ``order`` (4 or 6) on the nodes."""
    _check_field_ensemble(ensemble)
    view = ensemble.first_order  # ValueError without a deformation
    _check_on_nodes(ensemble, rule)
    b = ensemble.points.shape[0]
    _check_size(ensemble, b, order)
    fixed_gi = _inverse_two_point(two_point, b)
    lam = ensemble.coupling
    p = view.layout.n_pairs
    pair_full = view.layout.full_indices()[0]
    if order == 4:
        if not view.layout.four_point:
            raise ValueError(
                "the quartic coupling needs the full four-point function: sample the nodes "
                "(B <= 16) with 'four_point' in observables"
            )

        def derivative(t, n):
            return view._full_four_point(t, n)

    else:
        rows = view._tuple_rows(6)  # ValueError without sextuples
        full = _sextuple_expansion(view.tuples.sextuples, b)

        def derivative(t, n):
            return view._tuple_connected((t, n), rows)[..., full]

    def statistic(t, n):
        if fixed_gi is None:
            g = (t[..., :p] / np.asarray(n, np.float64)[..., None])[..., pair_full]
            gi = _batched_inverse(g)
        else:
            gi = fixed_gi
        coupling = -lam * _lower(gi, derivative(t, n), order)
        return _with_weight(coupling, order)

    return _locality(view._estimate(1, statistic), b, order)


def _free(ensemble, rule):
    """Locality of the free ensemble's own Edgeworth quartic coupling -G4c . G^{-1 x4}."""
    _check_field_ensemble(ensemble)
    if rule is not None:
        _check_on_nodes(ensemble, rule)
    ensemble.four_point(1, connected=True, neurons="same")  # validates: 'four_point' sampled
    b = ensemble.points.shape[0]
    _check_size(ensemble, b, 4)

    def statistic(m):
        coupling = -_lower(_batched_inverse(m.two_point), m.same_connected, 4)
        return _with_weight(coupling, 4)

    return _locality(ensemble.estimate(1, statistic), b, 4)


def coupling_locality(ensemble, rule=None, *, order=4, source="first_order", two_point=None):
    """How local the Edgeworth coupling of a cos-net field on quadrature nodes is
    (module docstring): a ``Locality`` (coupling, diagonal, off-diagonal weight, max
    off-diagonal |z|), every value with delete-one-block jackknife errors.

    source="first_order": lambda (-dG_n,c/dlambda) . (G^{-1})^{x n}, n = ``order`` (4 or
    6), from ``ensemble.first_order`` of a deformed ensemble (lambda = its coupling)
    sampled on ``rule.points`` (``rule = deformation.rule(net)``, required); the expected
    values are ``local_quartic_coupling(rule, lambda)`` and 0. order=4 needs the full
    four-point function (B <= 16), order=6 the six-point function on every sextuple
    (``sextuples=node_sextuples(B)``). G is the ensemble's free two-point function, or
    the given ``two_point`` (B, B) (e.g. exact, ``theory.cosnet_two_point``).

    source="free": the free ensemble's own coupling -G4c . (G^{-1})^{x4} (order 4; any
    cos-net ensemble with 'four_point'; ``rule``, if given, checks the points).
    """
    if order not in (4, 6):
        raise ValueError(f"order must be 4 or 6, got {order!r}")
    if source == "first_order":
        if rule is None:
            raise ValueError("source='first_order' needs the deformation's rule")
        return _first_order(ensemble, rule, order, two_point)
    if source == "free":
        if order != 4 or two_point is not None:
            raise ValueError("source='free' gives the quartic coupling (order=4, measured G)")
        return _free(ensemble, rule)
    raise ValueError(f"source must be 'first_order' or 'free', got {source!r}")


def quartic_coupling_on_nodes(ensemble, rule, *, two_point=None):
    """lambda (-dG4c/dlambda) . (G^{-1})^{x4} (B, B, B, B) of a deformed ensemble sampled
    on ``rule.points``, with jackknife errors (``coupling_locality``); at large width it
    equals ``local_quartic_coupling(rule, lambda)`` = lambda w_a delta_abcd."""
    return coupling_locality(ensemble, rule, order=4, two_point=two_point).coupling


def sextic_coupling_on_nodes(ensemble, rule, *, two_point=None):
    """lambda (-dG6c/dlambda) . (G^{-1})^{x6} (B,) * 6 of a deformed ensemble sampled on
    ``rule.points`` with ``sextuples=node_sextuples(B)``, with jackknife errors
    (``coupling_locality``); zero at first order and infinite width."""
    return coupling_locality(ensemble, rule, order=6, two_point=two_point).coupling
