"""Infinite-width extrapolation of ensemble estimates (docs/estimators.md#extrapolation).

Ensembles at several widths N give independent ``Estimate`` s of the same quantity; the
quantity's large-N behaviour is fitted elementwise, by weighted least squares, to

    y(N) = c0 + c1 / N                  (order=1)
    y(N) = c0 + c1 / N + c2 / N**2      (order=2)

and c0, with its propagated standard error, is the infinite-width value.
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.stats

from .ensemble import Estimate

ORDERS = (1, 2)


def _check_order(order):
    if isinstance(order, (bool, np.bool_)) or not isinstance(order, (int, np.integer)):
        raise TypeError(f"order must be the integer 1 or 2, got {order!r}")
    if order not in ORDERS:
        raise ValueError(f"order must be 1 or 2, got {order}")
    return int(order)


def _check_width(width, name="width"):
    """A width N as a float: a real number > 0 (``inf`` allowed: 1/N = 0)."""
    if isinstance(width, (bool, np.bool_)) or not isinstance(width, (int, float, np.number)):
        raise TypeError(f"{name} N must be a positive number, got {width!r}")
    if isinstance(width, (complex, np.complexfloating)):
        raise TypeError(f"{name} N must be a real number, got {width!r}")
    value = float(width)
    if not value > 0:
        raise ValueError(f"{name} N must be > 0, got {width!r}")
    return value


def _real_array(given, what, width):
    array = np.asarray(given)
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"the Estimate at N={width!r} must have real {what}s, got {array.dtype} values"
        )
    return array.astype(np.float64)


def _inverse_powers(widths, order):
    """The design rows (1, 1/N, ..., 1/N**order), shape widths.shape + (order + 1,)."""
    return np.asarray(widths, dtype=np.float64)[..., None] ** -np.arange(order + 1.0)


def _estimate(value, variance):
    """Estimate(value, sqrt(variance)) with array fields (0-d for a scalar)."""
    error = np.sqrt(np.maximum(variance, 0.0))
    return Estimate(np.array(value, dtype=np.float64), np.array(error, dtype=np.float64))


@dataclass(frozen=True)
class Extrapolation:
    """The weighted least-squares fit ``y(N) = sum_k c_k / N**k`` (k = 0..order) of
    ``extrapolate``, elementwise over the estimates' shape S.

    ``infinite_width``: an Estimate of c0 with error sqrt(Cov[0, 0]);
    ``coefficients``: (order + 1,) + S, c0, c1[, c2];
    ``covariance``: (order + 1, order + 1) + S, Cov = (A^T W A)^-1 (see ``extrapolate``);
    ``chi2``: S, ``sum_i ((y_i - y(N_i)) / sigma_i)**2`` at the fit;
    ``dof``: n_widths - order - 1;
    ``p_value``: S, P(chi2_dof >= chi2) = scipy.stats.chi2.sf(chi2, dof), NaN when dof == 0;
    ``widths``: the fitted widths N_i, ascending; ``order``: 1 or 2.
    """

    infinite_width: Estimate
    coefficients: np.ndarray
    covariance: np.ndarray
    chi2: np.ndarray
    dof: int
    p_value: np.ndarray
    widths: tuple
    order: int

    def at(self, N):
        """The fitted Estimate at width N (``N=inf`` gives c0):

            value = a^T c,   error = sqrt(a^T Cov a),   a = (1, 1/N, ..., 1/N**order),

        elementwise; the error includes the correlation of the coefficients."""
        a = _inverse_powers(_check_width(N), self.order)
        value = np.einsum("k,k...->...", a, self.coefficients)
        variance = np.einsum("k,kj...,j->...", a, self.covariance, a)
        return _estimate(value, variance)

    def __repr__(self):
        return (
            f"Extrapolation(order={self.order}, widths={self.widths}, "
            f"infinite_width={self.infinite_width!r}, chi2={self.chi2!r}, dof={self.dof}, "
            f"p_value={self.p_value!r})"
        )


def _checked(estimates, order):
    """(widths (n,), values (n,) + S, errors (n,) + S), ascending in N, all validated."""
    if not isinstance(estimates, Mapping):
        raise TypeError(
            f"estimates must be a mapping {{width N: Estimate}}, got {type(estimates).__name__}"
        )
    needed = order + 1
    if len(estimates) < needed:
        raise ValueError(
            f"an order-{order} extrapolation needs at least {needed} widths, "
            f"got {len(estimates)} estimate(s)"
        )
    rows = []
    for key, estimate in estimates.items():
        width = _check_width(key)
        if not math.isfinite(width):
            raise ValueError(f"width N must be finite, got {key!r}")
        if not isinstance(estimate, Estimate):
            raise TypeError(
                f"estimates[{key!r}] must be an Estimate, got {type(estimate).__name__}"
            )
        value = _real_array(estimate.value, "value", key)
        error = _real_array(estimate.error, "error", key)
        if error.shape != value.shape:
            raise ValueError(
                f"the Estimate at N={key!r} has error shape {error.shape} "
                f"but value shape {value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"the Estimate at N={key!r} has non-finite values")
        if not np.all(np.isfinite(error) & (error > 0)):
            raise ValueError(
                f"the Estimate at N={key!r} has errors that are not finite and > 0"
                + ("" if estimate.note is None else f" ({estimate.note})")
            )
        rows.append((width, key, value, error))
    rows.sort(key=lambda row: row[0])
    shapes = {row[2].shape for row in rows}
    if len(shapes) > 1:
        found = ", ".join(f"N={row[1]!r}: {row[2].shape}" for row in rows)
        raise ValueError(f"the estimates must have equal shapes, got {found}")
    for (low, low_key, *_), (high, high_key, *_) in zip(rows, rows[1:]):
        if low == high:
            raise ValueError(f"the widths N must be distinct, got {low_key!r} and {high_key!r}")
    widths = np.array([row[0] for row in rows])
    return widths, np.stack([row[2] for row in rows]), np.stack([row[3] for row in rows])


def extrapolate(estimates, order=1):
    """Extrapolate Estimates at several widths to infinite width.

    ``estimates``: a mapping {N: Estimate} of the same quantity at distinct widths N > 0,
    with independent errors (independent ensembles), all of one shape S (a scalar
    included); at least ``order + 1`` of them. ``order``: 1 or 2.

    Model, elementwise over S, for the widths N_i (i = 1..n):

        y(N) = c0 + c1 / N                (order=1)
        y(N) = c0 + c1 / N + c2 / N**2    (order=2)

    Weighting: weighted least squares with ``w_i = 1 / sigma_i**2``, sigma_i the
    Estimate's standard error at N_i, i.e. c minimises ``chi2 = sum_i w_i (y_i - a_i^T
    c)**2`` with the design rows ``a_i = (1, 1/N_i[, 1/N_i**2])``. With A the
    n x (order + 1) design matrix and W = diag(w):

        c   = (A^T W A)^-1 A^T W y
        Cov = (A^T W A)^-1            (the covariance of c, errors taken as known:
                                       not rescaled by chi2 / dof)

    Error propagation: the infinite-width value c0 has the standard error sqrt(Cov[0, 0]);
    ``Extrapolation.at(N)`` has ``sqrt(a^T Cov a)``, ``a = (1, 1/N[, 1/N**2])``.

    Goodness of fit: chi2 at the minimum, with dof = n - order - 1, and its p-value
    P(chi2_dof >= chi2) (NaN when dof == 0: the fit interpolates exactly). A small p-value
    says the model misses the data (e.g. a ``1/N**2`` term fitted with order=1).

    The fit is solved by a QR factorisation of sqrt(W) A with 1/N scaled by the smallest
    width, so it stays accurate for widely spread widths. Returns an ``Extrapolation``.
    Raises TypeError for a non-mapping, non-Estimate entries, complex values or a
    non-integer order; ValueError for too few widths, errors not finite and > 0,
    non-finite values, unequal shapes, widths not distinct or not > 0, or an order
    other than 1 or 2.
    """
    order = _check_order(order)
    widths, values, errors = _checked(estimates, order)
    n, p = widths.size, order + 1
    shape = values.shape[1:]
    scale = widths[0]  # x_i = N_min / N_i in (0, 1]: a well-conditioned design
    design = _inverse_powers(widths / scale, order)  # (n, p)
    y = values.reshape(n, -1).T  # (M, n)
    sqrt_w = 1.0 / errors.reshape(n, -1).T  # (M, n)
    q, r = np.linalg.qr(sqrt_w[..., None] * design)  # (M, n, p), (M, p, p)
    r_inverse = np.linalg.inv(r)
    b = np.einsum("mij,mkj,mk->mi", r_inverse, q, sqrt_w * y)  # (M, p), in powers of x
    residual = sqrt_w * (y - b @ design.T)
    chi2 = np.einsum("mi,mi->m", residual, residual)
    unscale = scale ** np.arange(p)  # c_k = b_k * N_min**k
    coefficients = b * unscale
    covariance = np.einsum("mik,mjk->mij", r_inverse, r_inverse) * np.outer(unscale, unscale)
    dof = n - p
    chi2 = chi2.reshape(shape)
    p_value = scipy.stats.chi2.sf(chi2, dof) if dof > 0 else np.full(shape, np.nan)
    coefficients = np.moveaxis(coefficients, -1, 0).reshape((p,) + shape)
    covariance = np.moveaxis(covariance, (-2, -1), (0, 1)).reshape((p, p) + shape)
    return Extrapolation(
        infinite_width=_estimate(coefficients[0], covariance[0, 0]),
        coefficients=coefficients,
        covariance=covariance,
        chi2=chi2,
        dof=dof,
        p_value=np.asarray(p_value, dtype=np.float64),
        widths=tuple(float(width) for width in widths),
        order=order,
    )
