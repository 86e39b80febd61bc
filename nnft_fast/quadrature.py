"""Tensor Gauss-Legendre quadrature on boxes, with node counts chosen from a band limit and
a rigorous error bound (docs/exact-results.md#phi4-first-order).

The integrals of the interacting cos-net theory, S_int = (lambda / 4!) int_V phi^4 d^d x
over a box V = prod_j [lo_j, hi_j], are integrals of band-limited functions: a cos-net
field phi(x) = sum_i a_i cos(w_i . x + b_i) with |w_i| < Lambda makes phi^4 a finite sum
of c_k exp(i k . x) with |k| <= 4 Lambda and sum_k |c_k| <= (sum_i |a_i|)^4. So it is
enough to bound the error of the rule on one exponential exp(i k . x), |k| <= K.

**One dimension.** On [c - h, c + h] (length L = 2h) the n-point Gauss-Legendre rule Q_n
has positive weights summing to L and is exact on polynomials of degree <= 2n - 1, so for
every such polynomial p

    |I f - Q_n f| = |I (f - p) - Q_n (f - p)| <= 2 L sup |f - p|.

For f(x) = exp(i k x), write x = c + h t: f = exp(i k c) exp(i z t), z = |k| h. The
Jacobi-Anger expansion exp(i z t) = J_0(z) + 2 sum_{j>=1} i^j J_j(z) T_j(t) truncated after
degree 2n - 1 (|T_j| <= 1 on [-1, 1]) and |J_j(z)| <= (z/2)^j / j! (z >= 0, DLMF 10.14.4)
give

    |I f - Q_n f| / L <= eps_1(z, n) = min(2, 4 sum_{j>=2n} (z/2)^j / j!),

the tail being bounded by its first term times 1 / (1 - (z/2) / (2n + 1)) when
z/2 < 2n + 1 (each later term is at most (z/2) / (2n + 1) times the one before). It is
increasing in z, so it holds for every |k| h <= z. (The Taylor polynomial instead of the
Chebyshev one gives the weaker 2 (z)^(2n) / (2n)!, larger by ~2^(2n - 1).)

**Tensor rule.** For f = prod_j f_j and Q = Q^(1) x ... x Q^(d), telescoping
I - Q = sum_j Q^(1) .. Q^(j-1) (I_j - Q^(j)) I_(j+1) .. I_d and |I_l f_l|, |Q^(l) f_l| <= L_l
give, relative to the volume V = prod_j L_j, with |k_j| <= |k| <= K,

    |I f - Q f| / V <= sum_j eps_1(K h_j, n_j)                   (``gl_error_bound``).

``nodes_for_bandlimit`` takes in each dimension the least n_j with eps_1(K h_j, n_j) <=
tol / d, so the sum is <= tol. For a cos-net field the error of int_V phi^4 is then at
most V * bound * (sum_i |a_i|)^4.

**Empirical rules.** The output phi(x) of an MLP is not band-limited (ReLU has kinks, tanh
is analytic but its spectrum is not compact), so no such bound exists for int_V V(phi).
``QuadratureRule.for_samples`` instead compares the rule Q_n (n_j nodes in dimension j)
with Q_2n on the integrands f_m = V(phi_m) of M fixed probe fields:

    err(n) = max_m |Q_n f_m - Q_2n f_m| / Q_2n |f_m|,

relative to the integral of |f_m| (robust to sign changes of V; a probe with Q_2n |f_m| = 0
vanishes on every node of Q_2n and counts with the absolute difference |Q_n f_m|, 0 when it
vanishes on the nodes of Q_n too). For an analytic integrand the error of Q_2n is far below
that of Q_n, so err(n) estimates the error of Q_n; it is an estimate on these probes, not a
bound, and it can be fooled (a kink between the nodes, a probe unlike the fields integrated
later). Without given nodes, n starts at 8 per dimension and doubles until err(n) <= tol.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .cosnet import CosNet, _positive_int, _real
from .memory import Need, check_memory

DEFAULT_TOL = 1e-10
GAUSSIAN_TAIL_SIGMAS = 8.0  # effective band limit (sqrt(d) + 8) / length of Gaussian momenta
FIELD_POWER = 4  # phi^4: band limit 4 Lambda
EMPIRICAL_START_NODES = 8  # for_samples: the first n per dimension, doubled until err(n) <= tol
MAX_EMPIRICAL_POINTS = 2**12  # for_samples: most nodes of the finer rule Q_2n of the estimate


# --------------------------------------------------------------------------- validation
def _dim(value):
    return _positive_int("dim", value)


def check_box(box, dim):
    """The box as a (d, 2) float64 array of rows (lo_j, hi_j).

    ``box`` is one (lo, hi) pair, used for every dimension, or a sequence of ``dim``
    pairs; every bound finite and lo < hi. TypeError for a non-numeric box, ValueError for
    a wrong shape, a non-finite bound or lo >= hi (naming the dimension)."""
    dim = _dim(dim)
    try:
        given = np.asarray(box)
    except (TypeError, ValueError):
        raise TypeError("box must be a (lo, hi) pair or a sequence of d such pairs") from None
    if given.dtype.kind not in "iuf" or given.dtype == np.bool_:
        raise TypeError(f"box must hold real numbers, got {given.dtype} values")
    arr = np.array(given, dtype=np.float64)
    if arr.shape == (2,):
        arr = np.tile(arr, (dim, 1))
    if arr.shape != (dim, 2):
        raise ValueError(
            f"box must be one (lo, hi) pair or {dim} pairs (shape (2,) or ({dim}, 2)), "
            f"got shape {given.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("box bounds must be finite")
    bad = np.flatnonzero(arr[:, 0] >= arr[:, 1])
    if bad.size:
        j = int(bad[0])
        raise ValueError(
            f"box needs lo < hi in every dimension; dimension {j} has "
            f"(lo, hi) = ({arr[j, 0]}, {arr[j, 1]})"
        )
    return arr


def _box_dim(box, nodes=None, dim=None):
    """d from an explicit dim, the box's shape ((d, 2)) or a sequence of node counts."""
    dims = []
    if dim is not None:
        dims.append(_dim(dim))
    try:
        shape = np.shape(box)
    except ValueError:  # ragged: check_box names the problem
        shape = ()
    if len(shape) == 2:
        dims.append(int(shape[0]))
    if nodes is not None and np.ndim(nodes) == 1:
        dims.append(len(nodes))
    if len(set(dims)) > 1:
        raise ValueError(f"box, nodes and dim disagree on the dimension: {dims}")
    return dims[0] if dims else 1


def _check_nodes(nodes, dim):
    """One int >= 1 per dimension (an int for all) as an int64 array (d,)."""
    arr = np.asarray(nodes)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"nodes must be an integer or one integer per dimension, got {nodes!r}")
    if arr.ndim == 0:
        arr = np.full(dim, int(arr))
    if arr.shape != (dim,):
        raise ValueError(f"nodes must be an integer or {dim} integers, got shape {arr.shape}")
    if np.any(arr < 1):
        raise ValueError(f"nodes must be >= 1 in every dimension, got {arr.tolist()}")
    return arr.astype(np.int64)


def _nonnegative(name, value):
    value = _real(name, value, False)  # TypeError / ValueError (non-finite) naming it
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return value


def _tol(tol):
    tol = _nonnegative("tol", tol)
    if not 0 < tol < 1:
        raise ValueError(f"tol must lie in (0, 1), got {tol}")
    return tol


# --------------------------------------------------------------------------- the bound
def gl_error_bound_1d(z, n):
    """eps_1(z, n) = min(2, 4 sum_{j>=2n} (z/2)^j / j!): a bound on the error of the
    n-point Gauss-Legendre rule for exp(i k x) on an interval of half-length h, |k| h <= z,
    relative to the interval's length (module docstring)."""
    z = _nonnegative("z", z)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if z == 0.0:
        return 0.0
    x, m = 0.5 * z, 2 * n
    ratio = x / (m + 1)
    if ratio >= 1.0:
        return 2.0
    log_first = m * math.log(x) - math.lgamma(m + 1)
    log_tail = log_first - math.log1p(-ratio)
    return min(2.0, 4.0 * math.exp(log_tail)) if log_tail < 700 else 2.0


def gl_error_bound(box, nodes, bandlimit, dim=None):
    """sum_j eps_1(K h_j, n_j): a rigorous bound on |int_V exp(i k . x) - Q exp(i k . x)| / V
    over all |k| <= K = ``bandlimit`` for the tensor Gauss-Legendre rule with ``nodes`` on
    ``box`` (half-lengths h_j; module docstring)."""
    d = _box_dim(box, nodes, dim)
    box = check_box(box, d)
    nodes = _check_nodes(nodes, d)
    k = _nonnegative("bandlimit", bandlimit)
    half = 0.5 * (box[:, 1] - box[:, 0])
    return float(sum(gl_error_bound_1d(k * h, n) for h, n in zip(half, nodes)))


def nodes_for_bandlimit(box, bandlimit, tol=DEFAULT_TOL, dim=None):
    """Per-dimension node counts (int64 (d,)) with gl_error_bound(box, nodes, bandlimit) <=
    tol: in dimension j the least n_j with eps_1(bandlimit h_j, n_j) <= tol / d (module
    docstring). The bound's value is ``gl_error_bound(box, nodes, bandlimit)``; ``dim``
    gives d when ``box`` is one pair (else d = 1)."""
    d = _box_dim(box, None, dim)
    box = check_box(box, d)
    k = _nonnegative("bandlimit", bandlimit)
    tol = _tol(tol)
    half = 0.5 * (box[:, 1] - box[:, 0])
    out = np.empty(d, np.int64)
    for j, h in enumerate(half):
        z = k * h
        # eps_1 decreases in n: bracket the least good n by doubling, then bisect (a few
        # dozen evaluations however large z is)
        lo, hi = 0, max(1, int(z / 4.0))
        while gl_error_bound_1d(z, hi) > tol / d:
            lo, hi = hi, 2 * hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if gl_error_bound_1d(z, mid) <= tol / d else (mid, hi)
        out[j] = hi
    return out


# --------------------------------------------------------------------------- the rule
def tensor_gauss_legendre(box, nodes, dim=None):
    """(points (Q, d), weights (Q,)): the tensor product of the n_j-point Gauss-Legendre
    rules on the box's intervals, Q = prod_j n_j, the points in C order (the last
    dimension fastest). ``nodes``: an int for every dimension or one int >= 1 per
    dimension; d from the box ((d, 2)), the nodes (a sequence) or ``dim``."""
    d = _box_dim(box, nodes, dim)
    box = check_box(box, d)
    nodes = _check_nodes(nodes, d)
    total = float(np.prod(np.asarray(nodes, np.float64)))
    check_memory(
        [
            Need(
                f"the {total:.3g} quadrature nodes ({d} coordinates and a weight each)",
                16.0 * total * (d + 1),
            )
        ],
        "this quadrature rule",
    )
    axes, axis_weights = [], []
    for (lo, hi), n in zip(box, nodes):
        x, w = special.roots_legendre(int(n))
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        axes.append(mid + half * x)
        axis_weights.append(half * w)
    grids = np.meshgrid(*axes, indexing="ij")
    points = np.stack([g.ravel() for g in grids], axis=1)
    weights = axis_weights[0]
    for w in axis_weights[1:]:
        weights = np.multiply.outer(weights, w)
    return np.ascontiguousarray(points), np.ascontiguousarray(weights.ravel())


def field_bandlimit(net, power=FIELD_POWER):
    """(K, tail): the band limit of phi^power for the cos-net ``net`` and the probability
    that one feature exceeds it. Propagator momenta: K = power * Lambda exactly (|w| <
    Lambda), tail 0. Gaussian momenta w ~ N(0, I / length^2) are not band-limited: the
    effective limit is K = power (sqrt(d) + 8) / length, since P(|g| >= sqrt(d) + t) <=
    exp(-t^2 / 2) for a standard normal g in R^d (Gaussian concentration of the 1-Lipschitz
    |g|, E|g| <= sqrt(d)), so tail = exp(-32) ~ 1.3e-14 per feature."""
    if not isinstance(net, CosNet):
        raise TypeError(f"net must be an nnft_fast.CosNet, got {type(net).__name__}")
    if net.momenta == "gaussian":
        t = GAUSSIAN_TAIL_SIGMAS
        return power * (math.sqrt(net.dim) + t) / net.length, math.exp(-0.5 * t * t)
    return power * net.cutoff, 0.0


def _frozen(arr):
    arr = np.array(arr)
    arr.setflags(write=False)
    return arr


def _probe_integrals(box, nodes, integrand, probes=None):
    """(rule, sum_q W_q f_m(y_q), sum_q W_q |f_m(y_q)|) for the tensor rule with ``nodes``:
    rule = (points, weights), the integrals (M,) of the ``integrand``'s probes f_m, checked
    to be a finite real (M, Q) array with M = ``probes`` when given (the same fields)."""
    points, weights = tensor_gauss_legendre(box, nodes)
    points.setflags(write=False)
    values = np.asarray(integrand(points))
    if values.dtype.kind not in "iuf" or values.dtype == np.bool_:
        raise TypeError(f"integrand must return real numbers, got {values.dtype} values")
    q = weights.size
    if values.ndim != 2 or values.shape[1] != q or values.shape[0] < 1:
        raise ValueError(
            f"integrand must return an (M, Q) array, M >= 1 probe fields at the Q = {q} "
            f"points, got shape {values.shape}"
        )
    if probes is not None and values.shape[0] != probes:
        raise ValueError(
            f"integrand must return the same M probe fields at every call: {probes} "
            f"before, {values.shape[0]} now"
        )
    values = values.astype(np.float64, copy=False)
    if not np.all(np.isfinite(values)):
        raise ValueError(
            f"integrand returned non-finite values at {np.sum(~np.isfinite(values))} of its "
            f"{values.size} values: the probe field is not finite on the box"
        )
    return (points, weights), values @ weights, np.abs(values) @ weights


def _empirical_error(coarse, fine):
    """max_m |Q_n f_m - Q_2n f_m| / Q_2n |f_m| from two ``_probe_integrals``; the absolute
    difference for a probe with Q_2n |f_m| = 0 (module docstring)."""
    diff = np.abs(coarse[1] - fine[1])
    scale = fine[2]
    return float(np.max(np.where(scale > 0, diff / np.where(scale > 0, scale, 1.0), diff)))


@dataclass(frozen=True, eq=False)
class QuadratureRule:
    """A tensor Gauss-Legendre rule on a box with its error bound.

    Attributes
    ----------
    box : numpy.ndarray, shape (d, 2)
        Rows (lo_j, hi_j).
    nodes : numpy.ndarray, shape (d,)
        Gauss-Legendre nodes per dimension.
    points : numpy.ndarray, shape (Q, d)
        The nodes, C order (last dimension fastest).
    weights : numpy.ndarray, shape (Q,)
        Positive weights summing to the volume.
    error_bound : float
        ``gl_error_bound(box, nodes, bandlimit)``: the rule's error on exp(i k . x),
        |k| <= bandlimit, relative to the volume (module docstring). For an empirical rule
        (``for_samples``) it is instead the estimate err(n) = max_m |Q_n f_m - Q_2n f_m| /
        Q_2n |f_m| on the probe integrands: not a bound.
    bandlimit : float
        The band limit K of the bound; math.inf for an empirical rule.
    tail : float
        For Gaussian-momentum fields, the probability that one feature lies beyond the
        effective band limit (``field_bandlimit``); 0 otherwise.
    empirical : bool
        True for the rules of ``for_samples`` (error_bound an estimate, module docstring
        "Empirical rules"), False for the rigorous ones.
    """

    box: np.ndarray
    nodes: np.ndarray
    points: np.ndarray
    weights: np.ndarray
    error_bound: float
    bandlimit: float = math.inf
    tail: float = 0.0
    empirical: bool = False

    @classmethod
    def for_bandlimit(cls, box, bandlimit, nodes=None, tol=DEFAULT_TOL, dim=None, tail=0.0):
        """The rule for functions of band limit ``bandlimit`` on ``box``: nodes from
        ``nodes_for_bandlimit(box, bandlimit, tol)`` when ``nodes`` is None, else the given
        counts (an int or one per dimension); error_bound from ``gl_error_bound``."""
        d = _box_dim(box, nodes, dim)
        box = check_box(box, d)
        k = _nonnegative("bandlimit", bandlimit)
        if nodes is None:
            nodes = nodes_for_bandlimit(box, k, tol)
        nodes = _check_nodes(nodes, d)
        points, weights = tensor_gauss_legendre(box, nodes)
        bound = gl_error_bound(box, nodes, k)
        return cls(_frozen(box), _frozen(nodes), _frozen(points), _frozen(weights), bound, k, tail)

    @classmethod
    def for_field(cls, net, box, nodes=None, tol=DEFAULT_TOL):
        """The rule for int_V phi^4 of the cos-net ``net`` on ``box``: band limit 4 Lambda
        (Gaussian momenta: the effective 4 (sqrt(d) + 8) / length, ``field_bandlimit``),
        nodes chosen for ``tol`` when ``nodes`` is None. For one network the error of
        int_V phi^4 is then <= V error_bound (sum_i |a_i|)^4 (Gaussian momenta: when all N
        features lie within the effective limit, probability >= 1 - N tail)."""
        k, tail = field_bandlimit(net)
        return cls.for_bandlimit(box, k, nodes=nodes, tol=tol, dim=net.dim, tail=tail)

    @classmethod
    def for_samples(
        cls, box, integrand, nodes=None, tol=DEFAULT_TOL, dim=None, max_points=MAX_EMPIRICAL_POINTS
    ):
        """An empirical rule for int_V f on ``box`` when f (e.g. V(phi) of an MLP output phi)
        has no band limit. ``integrand(points)`` takes points (Q, d) float64 (read-only)
        and returns an (M, Q) array: f_m at the points for M >= 1 fixed probe fields, the
        same at every call. error_bound is the estimate err(n) = max_m |Q_n f_m - Q_2n f_m| /
        Q_2n |f_m| (module docstring "Empirical rules"), empirical True, bandlimit math.inf.

        ``nodes`` None: n = 8 per dimension, doubled in every dimension until err(n) <= tol;
        ValueError if the next check's rule Q_2n would have more than ``max_points`` nodes
        (a field that is not smooth converges slowly: pass ``nodes``). ``nodes`` given (an
        int or one per dimension): that rule and its err(nodes), no tolerance check and no
        ``max_points`` limit. TypeError for a non-callable integrand or non-real values,
        ValueError for a wrong shape, a changing M or non-finite values."""
        if not callable(integrand):
            raise TypeError(f"integrand must be callable, got {type(integrand).__name__}")
        d = _box_dim(box, nodes, dim)
        box = check_box(box, d)
        given = nodes is not None
        if given:
            nodes = _check_nodes(nodes, d)
        else:
            tol = _tol(tol)
            max_points = _positive_int("max_points", max_points)
            nodes = np.full(d, EMPIRICAL_START_NODES, np.int64)
        coarse = error = None
        while True:  # given nodes: once; else doubling n until err(n) <= tol
            total = math.prod(2 * int(n) for n in nodes)  # nodes of Q_2n (Python ints)
            if not given and total > max_points:
                reached = (
                    f"the empirical error is {error:.3g} with nodes = {(nodes // 2).tolist()}"
                    if error is not None
                    else "no error was estimated"
                )
                raise ValueError(
                    f"the tolerance tol = {tol:g} could not be reached with at most "
                    f"max_points = {max_points} nodes ({reached}; checking nodes = "
                    f"{nodes.tolist()} against twice as many would take {total} nodes): the "
                    "field may not be smooth (e.g. ReLU networks converge only algebraically); "
                    "pass nodes= explicitly, and the rule's error_bound states its empirical "
                    "error then"
                )
            if coarse is None:
                coarse = _probe_integrals(box, nodes, integrand)
            fine = _probe_integrals(box, 2 * nodes, integrand, coarse[1].size)
            error = _empirical_error(coarse, fine)
            if given or error <= tol:
                break
            nodes, coarse = 2 * nodes, fine
        frozen = [_frozen(arr) for arr in (box, nodes, *coarse[0])]  # box, nodes, points, weights
        return cls(*frozen, error, bandlimit=math.inf, empirical=True)

    @property
    def dim(self):
        return self.box.shape[0]

    @property
    def volume(self):
        """V = prod_j (hi_j - lo_j)."""
        return float(np.prod(self.box[:, 1] - self.box[:, 0]))

    def integrate(self, values):
        """sum_q W_q values[..., q]: the rule applied along the last axis."""
        values = np.asarray(values)
        if values.shape[-1:] != self.weights.shape:
            raise ValueError(
                f"values must have last axis {self.weights.size} (the nodes), "
                f"got shape {values.shape}"
            )
        return values @ self.weights


__all__ = [
    "QuadratureRule",
    "check_box",
    "field_bandlimit",
    "gl_error_bound",
    "gl_error_bound_1d",
    "nodes_for_bandlimit",
    "tensor_gauss_legendre",
]
