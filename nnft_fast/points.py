"""Point sets for cos-net fields: regular grids (``grid_points``), the compact pair order
of their two-point statistics (``pair_index``) and the pairs' separations."""

import math
import numbers

import numpy as np

from .memory import Need, check_memory


def _is_int(value):
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral)


def _is_real(value):
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)


def _per_axis(name, value, dim, positive):
    """``value`` (a number or one per axis) as a float64 (dim,) array, finite (> 0 if
    ``positive``)."""
    items = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    if not all(_is_real(v) for v in items):
        raise TypeError(f"{name} must be a real number or a sequence of {dim}, got {value!r}")
    if len(items) == 1:
        items = items * dim
    if len(items) != dim:
        raise ValueError(
            f"{name} must be a number or have one entry per axis ({dim}), got {value!r}"
        )
    try:
        out = np.array([float(v) for v in items], dtype=np.float64)
    except OverflowError:  # an integer beyond the float range
        raise ValueError(f"{name} must be finite, got {value!r}") from None
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and not np.all(out > 0):
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return out


def grid_points(shape, spacing, origin=None):
    """The points of a regular grid in R^d, one per row, in row-major order.

    Point ``(i_1, ..., i_d)`` (0 <= i_k < shape[k]) is ``origin + spacing * (i_1, ...,
    i_d)``, and its row is the C-order (last axis fastest) flat index of the grid:
    ``np.ravel_multi_index((i_1, ..., i_d), shape)``.

    Parameters
    ----------
    shape : sequence of int
        Points per axis, each >= 1; its length is the dimension d.
    spacing : float or sequence of float
        Lattice spacing, > 0: one for every axis or one per axis.
    origin : float or sequence of float, optional
        The grid point of index (0, ..., 0); default the origin of R^d.

    Returns
    -------
    numpy.ndarray
        The points, float64 of shape (prod(shape), d).

    Raises
    ------
    TypeError, ValueError
        For a malformed argument, naming it; ValueError also for a grid whose points would
        not fit in memory.
    """
    if isinstance(shape, (str, bytes)) or not isinstance(shape, (list, tuple, np.ndarray)):
        raise TypeError(f"shape must be a sequence of integers (points per axis), got {shape!r}")
    shape = list(shape)
    if not shape:
        raise ValueError("shape must name at least one axis, got an empty sequence")
    if not all(_is_int(n) for n in shape):
        raise TypeError(f"shape must hold integers (points per axis), got {shape!r}")
    if min(shape) < 1:
        raise ValueError(f"shape must hold counts >= 1, got {shape!r}")
    dim = len(shape)
    step = _per_axis("spacing", spacing, dim, positive=True)
    start = np.zeros(dim) if origin is None else _per_axis("origin", origin, dim, positive=False)
    n_points = math.prod(int(n) for n in shape)
    nbytes = 8.0 * min(n_points, 2**64) * dim  # refused all the same; no float overflow
    check_memory(
        [Need(f"the grid points ({n_points:,} x d = {dim}, float64)", nbytes)],
        f"a grid of shape {shape}",
    )
    axes = [start[k] + step[k] * np.arange(int(n), dtype=np.float64) for k, n in enumerate(shape)]
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.ascontiguousarray(np.stack([m.ravel() for m in mesh], axis=1))


__all__ = ["grid_points"]


def pair_index(n_points):
    """(B, B) int64: the position of pair (min(a, b), max(a, b)) in the compact vector of
    pairs a <= b in row-major order (``accumulators.MomentLayout.pairs``)."""
    a, b = (
        np.minimum.outer(np.arange(n_points), np.arange(n_points)),
        np.maximum.outer(np.arange(n_points), np.arange(n_points)),
    )
    return a * n_points - a * (a - 1) // 2 + (b - a)


def separations(points):
    """|x_a - x_b| for the compact pairs a <= b of ``points`` (B, d)."""
    a, b = np.triu_indices(points.shape[0])
    return np.linalg.norm(points[a] - points[b], axis=1)
