"""Connected correlators on lists of index tuples (4- and 6-point functions of fields on many
points), estimated without bias from streaming per-network statistics (docs/fields.md).

For a tuple t = (p_1, ..., p_n) of point indices of a mean-zero field, the connected
function is the cumulant

    kappa(t) = sum_{pi} (-1)^(|pi| - 1) (|pi| - 1)! prod_{B in pi} m(B),

over the set partitions pi of t into blocks of size >= 2 (blocks of size 1 have m = 0
in law), m(B) = E[prod_{p in B} phi(x_p)] averaged over the n_out outputs. For n = 4:
m4 - m2 m2 (3 pairings); for n = 6: m6 - sum_15 m2 m4 - sum_10 m3 m3 + 2 sum_15 m2 m2 m2.

A product of k moments is estimated over k *different* networks (a U-statistic, as
everywhere in the package): with per-network values X_j(e) and totals T over N networks,

    sum_{e_1..e_k distinct} prod_j X_j(e_j)
        = sum_{sigma} mu(sigma) prod_{g in sigma} T[prod_{j in g} X_j],
    mu(sigma) = prod_g (-1)^(|g| - 1) (|g| - 1)!,

over the set partitions sigma of the k factors, divided by N (N - 1) ... (N - k + 1).
So every network contributes, per tuple, the products prod_{B in g} M(B) of its own
output-averaged monomials M(B) over the groups g that occur: ``TupleLayout`` lists the
distinct blocks (multisets of points) and the distinct such products ("statistics"), as
the CSR tables the kernels take (``kernels.cpu.field.tuple_statistics``).
"""

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse

TUPLE_ORDERS = (4, 6)


def set_partitions(items):
    """Every set partition of the list ``items`` (lists of blocks, each a list)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[first]] + partition
        for i in range(len(partition)):
            yield partition[:i] + [[first] + partition[i]] + partition[i + 1 :]


def _moebius(partition):
    """prod over blocks of (-1)^(|b| - 1) (|b| - 1)!: the cumulant / U-statistic weight."""
    return math.prod((-1) ** (len(b) - 1) * math.factorial(len(b) - 1) for b in partition)


def check_tuples(name, tuples, order, n_points):
    """``tuples`` as an int64 array (T, order) of point indices in [0, B)."""
    if tuples is None:
        return np.zeros((0, order), np.int64)
    try:
        arr = np.asarray(tuples)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer array of shape (T, {order})") from None
    if arr.size == 0:
        return np.zeros((0, order), np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer point indices, got {arr.dtype} values")
    if arr.ndim == 1 and arr.size == order:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != order:
        raise ValueError(f"{name} must have shape (T, {order}), got {arr.shape}")
    if arr.min() < 0 or arr.max() >= n_points:
        raise ValueError(
            f"{name} hold point indices outside [0, {n_points}) (B = {n_points} points)"
        )
    return arr.astype(np.int64)


@dataclass(frozen=True, eq=False)
class TupleLayout:
    """The tuple statistics of a run: quadruples (T4, 4) and sextuples (T6, 6) of points.

    Tables (int64): block_ptr, block_points (CSR: the points of each distinct block, a
    sorted multiset); stat_ptr, stat_blocks (CSR: the blocks whose M multiply into each
    statistic). ``terms`` drive the estimator; ``products[row]`` are the cumulant's products of
    moments of tuple ``row`` before their U-statistic expansion, (coefficient, block ids);
    ``stat_index`` maps a sorted tuple of block ids to its statistic.
    """

    quadruples: np.ndarray
    sextuples: np.ndarray
    blocks: tuple = field(init=False, repr=False)
    statistics: tuple = field(init=False, repr=False)
    terms: tuple = field(init=False, repr=False)
    products: tuple = field(init=False, repr=False)
    stat_index: dict = field(init=False, repr=False)

    def __post_init__(self):
        block_ids, stat_ids, terms, products = {}, {}, [], []

        def block_id(points):
            key = tuple(sorted(points))
            return block_ids.setdefault(key, len(block_ids))

        def stat_id(blocks):
            key = tuple(sorted(blocks))
            return stat_ids.setdefault(key, len(stat_ids))

        for row, tup in enumerate(list(self.quadruples) + list(self.sextuples)):
            for pi in set_partitions(list(range(len(tup)))):
                if any(len(b) < 2 for b in pi):
                    continue
                coefficient = _moebius([[0] * len(pi)])  # (-1)^(k-1) (k-1)!
                factors = [block_id([int(tup[p]) for p in b]) for b in pi]
                products.append((row, coefficient, tuple(factors)))
                for sigma in set_partitions(list(range(len(factors)))):
                    stats = [stat_id([factors[j] for j in g]) for g in sigma]
                    terms.append((row, coefficient * _moebius(sigma), len(factors), stats))
        object.__setattr__(self, "blocks", tuple(block_ids))
        object.__setattr__(self, "statistics", tuple(stat_ids))
        object.__setattr__(self, "terms", tuple(terms))
        by_row = [[] for _ in range(len(self.quadruples) + len(self.sextuples))]
        for row, coefficient, factors in products:
            by_row[row].append((coefficient, factors))
        object.__setattr__(self, "products", tuple(tuple(p) for p in by_row))
        object.__setattr__(self, "stat_index", stat_ids)

    @classmethod
    def build(cls, quadruples, sextuples, n_points):
        """Validated layout from the user's lists (None for none)."""
        return cls(
            check_tuples("quadruples", quadruples, 4, n_points),
            check_tuples("sextuples", sextuples, 6, n_points),
        )

    @property
    def n_stat(self):
        return len(self.statistics)

    @property
    def n_tuples(self):
        return len(self.quadruples) + len(self.sextuples)

    def kernel_tables(self):
        """(block_ptr, block_points, stat_ptr, stat_blocks) int64 CSR tables."""

        def csr(rows):
            ptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
            flat = np.array([x for r in rows for x in r], np.int64)
            return ptr, flat

        return (*csr(self.blocks), *csr(self.statistics))

    def connected(self, totals, count):
        """Connected functions of every tuple, quadruples first: (..., n_tuples) from the
        totals (..., n_stat) of the statistics over ``count`` (...) networks (module
        docstring). Needs count >= 3 for the six-point products of three moments."""
        totals = np.asarray(totals, np.float64)
        n = np.asarray(count, np.float64)[..., None]
        rows, coefficients, orders, stats = self._term_arrays()
        padded = np.concatenate([totals, np.ones(totals.shape[:-1] + (1,))], axis=-1)
        falling = np.concatenate([n, n * (n - 1.0), n * (n - 1.0) * (n - 2.0)], axis=-1)
        contributions = coefficients * padded[..., stats].prod(axis=-1) / falling[..., orders - 1]
        lead = contributions.shape[:-1]
        flat = contributions.reshape(-1, contributions.shape[-1])
        summed = sparse.csr_matrix(
            (np.ones(rows.size), (np.arange(rows.size), rows)),
            shape=(rows.size, self.n_tuples),
        )
        return np.asarray(flat @ summed).reshape(lead + (self.n_tuples,))

    def _term_arrays(self):
        """The estimator's terms as arrays: tuple row, coefficient, number k of moment
        factors, and the statistic indices (padded with n_stat, a column of ones)."""
        width = max((len(t[3]) for t in self.terms), default=1)
        stats = np.full((len(self.terms), width), self.n_stat, np.int64)
        for i, (_, _, _, ids) in enumerate(self.terms):
            stats[i, : len(ids)] = ids
        rows = np.array([t[0] for t in self.terms], np.int64)
        coefficients = np.array([t[1] for t in self.terms], np.float64)
        orders = np.array([t[2] for t in self.terms], np.int64)
        return rows, coefficients, orders, stats

    def moments(self, totals, count):
        """Raw moments E[prod_{p in t} phi(x_p)] of every tuple (..., n_tuples)."""
        totals = np.asarray(totals, np.float64)
        n = np.asarray(count, np.float64)[..., None]
        ids = {s: i for i, s in enumerate(self.statistics)}
        blocks = {b: i for i, b in enumerate(self.blocks)}
        columns = [
            ids[(blocks[tuple(sorted(int(p) for p in tup))],)]
            for tup in list(self.quadruples) + list(self.sextuples)
        ]
        return totals[..., columns] / n


__all__ = ["TUPLE_ORDERS", "TupleLayout", "check_tuples", "set_partitions"]
