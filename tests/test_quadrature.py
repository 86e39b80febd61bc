"""Tensor Gauss-Legendre quadrature (nnft_fast.quadrature): exactness on polynomials, the
error bound on exponentials, the node choice on actual cos-net fields, validation."""

import math

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.quadrature import (
    QuadratureRule,
    check_box,
    field_bandlimit,
    gl_error_bound,
    gl_error_bound_1d,
    nodes_for_bandlimit,
    tensor_gauss_legendre,
)


ROUNDING = 1e-13  # the bound is on exact arithmetic; rounding of the sums and closed forms


def _field(net, points, n_networks, seed, chunk=256):
    """phi (n_networks, Q) of the first output on ``points``, evaluated in chunks of points
    (the networks are a function of (seed, index) alone, so the chunks see the same ones;
    ``preactivations`` sizes its run for the pair statistics of all the points it gets)."""
    parts = [
        nf.preactivations(net, points[i : i + chunk], n_networks, seed)[0][:, 0, :]
        for i in range(0, len(points), chunk)
    ]
    return np.concatenate(parts, axis=1)


# --------------------------------------------------------------------------- the rule
@pytest.mark.parametrize(
    "box, nodes",
    [
        ((-1.0, 2.0), 5),
        ([(-0.5, 1.5), (0.0, 3.0)], (3, 6)),
        ([(0.1, 0.9), (-2.0, -1.0), (1.0, 4.0)], (4, 2, 5)),
    ],
)
def test_exact_on_polynomials_of_degree_2n_minus_1(box, nodes):
    d = len(nodes) if np.ndim(nodes) else 1
    arr = check_box(box, d)
    n = np.broadcast_to(nodes, (d,))
    points, weights = tensor_gauss_legendre(box, nodes)
    assert points.shape == (int(np.prod(n)), d) and weights.shape == (int(np.prod(n)),)
    assert np.all(weights > 0)
    assert math.isclose(weights.sum(), np.prod(arr[:, 1] - arr[:, 0]), rel_tol=1e-14)
    rng = np.random.default_rng(1)
    for _ in range(20):
        powers = [int(rng.integers(0, 2 * nj)) for nj in n]  # degree <= 2 n_j - 1 each
        exact = np.prod(
            [(hi ** (p + 1) - lo ** (p + 1)) / (p + 1) for (lo, hi), p in zip(arr, powers)]
        )
        value = np.prod(points ** np.asarray(powers), axis=1) @ weights
        scale = np.prod(
            [max(abs(lo), abs(hi)) ** p * (hi - lo) for (lo, hi), p in zip(arr, powers)]
        )
        assert abs(value - exact) <= 1e-13 * scale
    # degree 2n is not integrated exactly (the rule is no better than stated)
    p = 2 * int(n[0])
    lo, hi = arr[0]
    exact = (hi ** (p + 1) - lo ** (p + 1)) / (p + 1) * np.prod(arr[1:, 1] - arr[1:, 0])
    assert abs(points[:, 0] ** p @ weights - exact) > 1e-8 * abs(exact)


def test_points_in_c_order():
    points, weights = tensor_gauss_legendre([(0.0, 1.0), (2.0, 3.0), (-1.0, 0.0)], (2, 3, 4))
    x0, w0 = tensor_gauss_legendre((0.0, 1.0), 2)
    x1, w1 = tensor_gauss_legendre((2.0, 3.0), 3)
    x2, w2 = tensor_gauss_legendre((-1.0, 0.0), 4)
    grid = points.reshape(2, 3, 4, 3)
    assert np.array_equal(grid[:, 0, 0, 0], x0[:, 0])
    assert np.array_equal(grid[0, :, 0, 1], x1[:, 0])
    assert np.array_equal(grid[0, 0, :, 2], x2[:, 0])
    assert np.allclose(weights.reshape(2, 3, 4), np.einsum("i,j,k->ijk", w0, w1, w2), rtol=1e-15)


def _exp_integral(box, k):
    """int_box exp(i k . x) in closed form (per dimension (e^{ik hi} - e^{ik lo}) / (ik))."""
    out = 1.0 + 0j
    for (lo, hi), kj in zip(box, k):
        if kj == 0:
            out *= hi - lo
        else:
            out *= (np.exp(1j * kj * hi) - np.exp(1j * kj * lo)) / (1j * kj)
    return out


@pytest.mark.parametrize(
    "box, d, bandlimit",
    [((-1.0, 1.0), 1, 7.0), ([(-0.5, 2.0), (0.0, 1.0)], 2, 9.0), ((-1.0, 0.5), 3, 4.0)],
)
def test_exponentials_within_the_bound(box, d, bandlimit):
    arr = check_box(box, d)
    volume = float(np.prod(arr[:, 1] - arr[:, 0]))
    rng = np.random.default_rng(2)
    ks = rng.normal(size=(300, d))
    ks *= (bandlimit * rng.uniform(0, 1, (300, 1)) ** (1 / d)) / np.linalg.norm(ks, axis=1)[:, None]
    ks = np.concatenate([ks, bandlimit * np.eye(d), -bandlimit * np.eye(d)])
    for n in range(1, {1: 30, 2: 20, 3: 12}[d]):  # until the bound is below rounding
        points, weights = tensor_gauss_legendre(arr, n)
        bound = gl_error_bound(arr, n, bandlimit)
        values = np.exp(1j * points @ ks.T).T @ weights
        exact = np.array([_exp_integral(arr, k) for k in ks])
        worst = float(np.max(np.abs(values - exact))) / volume
        assert worst <= bound + ROUNDING, (n, worst, bound)
    chosen = nodes_for_bandlimit(arr, bandlimit)
    assert gl_error_bound(arr, chosen, bandlimit) <= 1e-10
    for j in range(d):  # the least counts: one node fewer in any dimension breaks the split
        fewer = chosen.copy()
        fewer[j] -= 1
        if fewer[j] >= 1:
            half = 0.5 * (arr[j, 1] - arr[j, 0])
            assert gl_error_bound_1d(bandlimit * half, fewer[j]) > 1e-10 / d


def test_bound_one_dimension():
    assert gl_error_bound_1d(0.0, 1) == 0.0
    assert gl_error_bound_1d(1e3, 3) == 2.0  # no better than the trivial bound
    # 4 (z/2)^(2n) / (2n)! / (1 - (z/2) / (2n + 1)) at z = 3, n = 4
    expected = 4 * 1.5**8 / math.factorial(8) / (1 - 1.5 / 9)
    assert math.isclose(gl_error_bound_1d(3.0, 4), expected, rel_tol=1e-13)
    values = [gl_error_bound_1d(10.0, n) for n in range(1, 40)]
    assert all(a >= b for a, b in zip(values, values[1:]))
    # tighter than the Taylor-remainder bound 2 z^(2n) / (2n)!
    z, n = 5.0, 8
    assert gl_error_bound_1d(z, n) < 2 * z ** (2 * n) / math.factorial(2 * n)


def test_counts_grow_with_cutoff_and_box():
    counts = [int(nodes_for_bandlimit((-1.0, 1.0), 4 * lam)[0]) for lam in (1, 2, 4, 8, 16)]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    counts = [int(nodes_for_bandlimit((0.0, length), 20.0)[0]) for length in (0.5, 1, 2, 4, 8)]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    n = nodes_for_bandlimit([(0.0, 1.0), (0.0, 4.0)], 10.0)
    assert n[1] > n[0]
    tight = nodes_for_bandlimit((0.0, 1.0), 10.0, tol=1e-14)
    loose = nodes_for_bandlimit((0.0, 1.0), 10.0, tol=1e-4)
    assert tight[0] > loose[0]
    rules = [QuadratureRule.for_field(nf.CosNet(2, 3, 1.0, lam), (-1.0, 1.0)) for lam in (1, 3, 9)]
    assert [int(r.nodes[0]) for r in rules] == sorted(int(r.nodes[0]) for r in rules)
    assert rules[0].nodes[0] < rules[2].nodes[0]


# --------------------------------------------------------------------------- cos-net fields
FIELD_CASES = [
    (nf.CosNet(1, 6, 1.0, 4.0), (-1.5, 1.0)),
    (nf.CosNet(1, 3, 0.5, 10.0, alpha=-1.0, amplitude="constant"), (0.0, 2.0)),
    (nf.CosNet(2, 5, 1.0, 3.0), [(-1.0, 1.0), (0.0, 0.5)]),
    (nf.CosNet(3, 4, 2.0, 2.0, alpha=0.5), (-0.5, 0.5)),
    (nf.CosNet.gaussian_kernel(1, 4, length=0.5), (-1.0, 1.0)),
    (nf.CosNet.gaussian_kernel(2, 3, length=1.5, variance=2.0), (-1.0, 2.0)),
]


@pytest.mark.parametrize("net, box", FIELD_CASES)
def test_field_rule_integrates_phi4_to_tolerance(net, box):
    rule = QuadratureRule.for_field(net, box)
    k, tail = field_bandlimit(net)
    assert rule.bandlimit == k and rule.tail == tail
    assert rule.error_bound <= 1e-10
    assert rule.error_bound == gl_error_bound(rule.box, rule.nodes, k)
    assert np.all(rule.points >= rule.box[:, 0]) and np.all(rule.points <= rule.box[:, 1])
    fine = QuadratureRule.for_field(net, box, nodes=2 * rule.nodes + 6)
    assert fine.error_bound < 1e-30
    n_networks = 16
    phi = _field(net, rule.points, n_networks, seed=3)
    phi_fine = _field(net, fine.points, n_networks, seed=3)
    coarse, exact = rule.integrate(phi**4), fine.integrate(phi_fine**4)
    # the error is <= V bound (sum_i |a_i|)^4 and sum_i |a_i| >= max |phi|
    scale = rule.volume * np.max(np.abs(phi_fine), axis=1) ** 4
    assert np.all(np.abs(coarse - exact) <= 1e-10 * scale), np.max(np.abs(coarse - exact) / scale)
    # and the rule is not trivially fine: a fifth of the nodes misses by much more
    few = QuadratureRule.for_field(net, box, nodes=np.maximum(rule.nodes // 5, 1))
    phi_few = _field(net, few.points, n_networks, seed=3)
    assert np.max(np.abs(few.integrate(phi_few**4) - exact) / scale) > 1e-8


def test_field_bandlimit():
    assert field_bandlimit(nf.CosNet(2, 3, 1.0, 5.0)) == (20.0, 0.0)
    k, tail = field_bandlimit(nf.CosNet.gaussian_kernel(4, 3, length=2.0))
    assert math.isclose(k, 4 * (2.0 + 8.0) / 2.0) and math.isclose(tail, math.exp(-32.0))
    # the tail bound P(|g| > sqrt(d) + t) <= exp(-t^2 / 2) against the chi law
    from scipy import stats

    for d in (1, 2, 3, 6):
        for t in (1.0, 2.0, 4.0, 8.0):
            assert stats.chi(d).sf(math.sqrt(d) + t) <= math.exp(-0.5 * t * t)
    with pytest.raises(TypeError, match="CosNet"):
        field_bandlimit("net")


def test_given_nodes_and_the_same_formula():
    net = nf.CosNet(2, 3, 1.0, 2.0)
    rule = QuadratureRule.for_field(net, (-1.0, 1.0), nodes=(5, 7))
    assert rule.nodes.tolist() == [5, 7] and rule.points.shape == (35, 2)
    assert rule.error_bound == gl_error_bound([(-1, 1), (-1, 1)], (5, 7), 8.0)
    assert rule.error_bound > 1e-10  # too few nodes: the bound says so
    assert math.isclose(rule.volume, 4.0) and rule.dim == 2
    with pytest.raises(ValueError):
        rule.points[0, 0] = 1.0  # read-only
    with pytest.raises(AttributeError):
        rule.error_bound = 0.0  # frozen
    with pytest.raises(ValueError, match="last axis"):
        rule.integrate(np.ones(3))
    assert math.isclose(rule.integrate(np.ones(35)), 4.0, rel_tol=1e-14)


# --------------------------------------------------------------------------- empirical rules
PROBE_A = np.array([[1.3, -0.7], [-2.1, 0.4], [0.6, 1.8]])  # a_m (first d columns used)
PROBE_C = np.array([0.2, -0.5, 1.1])


def _probes(points):
    """f_m(y) = tanh(a_m . y + c_m)^4 / 4!, m = 0, 1, 2: (3, Q), analytic on the box."""
    return np.tanh(points @ PROBE_A[:, : points.shape[1]].T + PROBE_C).T ** 4 / 24


def _probe_reference(box):
    """int f_m (3,) by scipy.integrate.quad / dblquad (= int |f_m|: the probes are >= 0)."""
    from scipy import integrate

    def one(m):  # quad calls f(y0), dblquad f(y1, y0)
        return lambda *y: _probes(np.array([y[::-1]]))[m, 0]

    if len(box) == 1:
        return np.array(
            [integrate.quad(one(m), *box[0], epsabs=0, epsrel=1e-13)[0] for m in range(3)]
        )
    (lo0, hi0), (lo1, hi1) = box
    return np.array(
        [integrate.dblquad(one(m), lo0, hi0, lo1, hi1, epsabs=0, epsrel=1e-13)[0] for m in range(3)]
    )


@pytest.mark.parametrize("box", [[(-1.0, 1.5)], [(-1.0, 1.0), (0.0, 2.0)]])
@pytest.mark.parametrize("tol", [1e-6, 1e-10])
def test_samples_rule_integrates_smooth_probes(box, tol):
    rule = QuadratureRule.for_samples(box, _probes, tol=tol)
    assert rule.empirical and rule.bandlimit == math.inf and rule.tail == 0.0
    assert rule.error_bound <= tol and rule.nodes.shape == (len(box),)
    assert np.all(rule.nodes == rule.nodes[0]) and rule.nodes[0] >= 8  # 8, doubled
    assert rule.points.shape == (int(np.prod(rule.nodes)), len(box))
    exact = _probe_reference(box)
    error = np.abs(rule.integrate(_probes(rule.points)) - exact) / exact
    assert np.all(error <= 1.01 * rule.error_bound + 1e-12), (error, rule.error_bound)
    if rule.nodes[0] > 8:  # the first of the doubled rules to reach tol
        half = QuadratureRule.for_samples(box, _probes, nodes=rule.nodes // 2)
        assert half.error_bound > tol
    # the rigorous constructors stay non-empirical
    assert not QuadratureRule.for_bandlimit(box, 1.0).empirical


def test_samples_given_nodes_is_the_formula():
    box = [(-1.0, 1.0), (0.5, 2.0)]

    def integrand(points):  # the probes, a sign-changing one and one that vanishes
        y0, y1 = points[:, 0], points[:, 1]
        return np.vstack([_probes(points), np.sin(3 * y0) * np.cos(2 * y1), 0 * y0])

    def rule_sum(n, values):  # independent tensor GL via numpy
        (x0, w0), (x1, w1) = [np.polynomial.legendre.leggauss(nj) for nj in n]
        (a0, b0), (a1, b1) = box
        y0 = 0.5 * (a0 + b0) + 0.5 * (b0 - a0) * x0
        y1 = 0.5 * (a1 + b1) + 0.5 * (b1 - a1) * x1
        pts = np.array([(u, v) for u in y0 for v in y1])
        w = np.outer(0.5 * (b0 - a0) * w0, 0.5 * (b1 - a1) * w1).ravel()
        return values(integrand(pts)) @ w

    rule = QuadratureRule.for_samples(box, integrand, nodes=(5, 7))
    assert rule.nodes.tolist() == [5, 7] and rule.points.shape == (35, 2) and rule.empirical
    coarse, fine = rule_sum((5, 7), lambda v: v), rule_sum((10, 14), lambda v: v)
    scale = rule_sum((10, 14), np.abs)
    assert scale[-1] == 0.0 and scale[:-1].min() > 0
    expected = np.max(np.abs(coarse - fine)[:-1] / scale[:-1])  # the zero probe: 0
    assert math.isclose(rule.error_bound, expected, rel_tol=1e-9), (rule.error_bound, expected)
    assert rule.error_bound > 1e-6  # few nodes: the estimate says so
    assert QuadratureRule.for_samples(box[0], integrand, nodes=5, dim=2).nodes.tolist() == [5, 5]


def test_samples_kinked_integrand_is_refused():
    def kinked(points):  # |y - 0.3|^3: a kink in the third derivative, algebraic convergence
        return np.abs(points[:, 0] - 0.3)[None] ** 3

    with pytest.raises(ValueError, match=r"max_points = 64 nodes.*nodes= explicitly"):
        QuadratureRule.for_samples((-1.0, 1.0), kinked, tol=1e-12, max_points=64)
    with pytest.raises(ValueError, match="no error was estimated"):
        QuadratureRule.for_samples([(-1.0, 1.0)] * 3, kinked, tol=1e-12, max_points=64)
    rule = QuadratureRule.for_samples((-1.0, 1.0), kinked, nodes=32)  # no tolerance check
    assert rule.error_bound > 1e-12 and rule.empirical
    # the same integrand smooth (no kink in the box) reaches the tolerance
    smooth = QuadratureRule.for_samples((0.5, 1.0), kinked, tol=1e-12, max_points=64)
    assert smooth.error_bound <= 1e-12


def test_samples_validation():
    box = (-1.0, 1.0)
    with pytest.raises(TypeError, match="callable"):
        QuadratureRule.for_samples(box, np.ones((2, 8)))
    with pytest.raises(ValueError, match=r"\(M, Q\)"):
        QuadratureRule.for_samples(box, lambda y: np.ones(len(y)))  # (Q,)
    with pytest.raises(ValueError, match=r"\(M, Q\)"):
        QuadratureRule.for_samples(box, lambda y: np.ones((2, len(y) + 1)))
    with pytest.raises(ValueError, match=r"\(M, Q\)"):
        QuadratureRule.for_samples(box, lambda y: np.ones((0, len(y))))
    with pytest.raises(ValueError, match="not finite on the box"):
        QuadratureRule.for_samples(box, lambda y: np.where(y.T > 0, 1.0, np.nan))
    with pytest.raises(TypeError, match="real"):
        QuadratureRule.for_samples(box, lambda y: np.ones((1, len(y))) * 1j)
    count = iter(range(1, 10))
    with pytest.raises(ValueError, match="same M"):
        QuadratureRule.for_samples(box, lambda y: np.ones((next(count), len(y))))
    with pytest.raises(ValueError, match="tol"):
        QuadratureRule.for_samples(box, _probes, tol=0.0)
    with pytest.raises(ValueError, match="max_points"):
        QuadratureRule.for_samples(box, _probes, max_points=0)
    with pytest.raises(ValueError, match=">= 1"):
        QuadratureRule.for_samples(box, _probes, nodes=0)


# --------------------------------------------------------------------------- validation
def test_box_forms():
    one = check_box((-1, 2), 3)
    assert one.dtype == np.float64 and one.shape == (3, 2)
    assert np.array_equal(one, [[-1, 2]] * 3)
    assert np.array_equal(check_box([(0, 1), (2, 3)], 2), [[0, 1], [2, 3]])
    assert np.array_equal(check_box([(0.5, 1.0)], 1), [[0.5, 1.0]])
    # d from the box, the nodes or dim
    assert tensor_gauss_legendre([(0, 1), (0, 1)], 3)[0].shape == (9, 2)
    assert tensor_gauss_legendre((0, 1), (2, 3))[0].shape == (6, 2)
    assert tensor_gauss_legendre((0, 1), 2, dim=3)[0].shape == (8, 3)
    assert tensor_gauss_legendre((0, 1), 4)[0].shape == (4, 1)
    assert nodes_for_bandlimit((0, 1), 5.0, dim=2).shape == (2,)


@pytest.mark.parametrize(
    "box, dim, error, match",
    [
        ((1.0, 1.0), 1, ValueError, "lo < hi"),
        ([(0, 1), (2, 1)], 2, ValueError, "dimension 1"),
        ((0.0, np.inf), 1, ValueError, "finite"),
        ((0.0, np.nan), 2, ValueError, "finite"),
        ([(0, 1), (0, 1)], 3, ValueError, "shape"),
        ((0, 1, 2), 1, ValueError, "shape"),
        ("ab", 1, TypeError, "real"),
        (("a", "b"), 1, TypeError, "real"),
        ([1 + 2j, 3], 1, TypeError, "real"),
        ((True, False), 1, TypeError, "real"),
        ([(0, 1), (0, 1, 2)], 2, TypeError, "pair"),
        ((0, 1), 0, ValueError, "dim"),
        ((0, 1), 1.5, TypeError, "dim"),
    ],
)
def test_box_validation(box, dim, error, match):
    with pytest.raises(error, match=match):
        check_box(box, dim)


def test_argument_validation():
    with pytest.raises(ValueError, match=">= 1"):
        tensor_gauss_legendre((0, 1), 0)
    with pytest.raises(TypeError, match="integer"):
        tensor_gauss_legendre((0, 1), 2.5)
    with pytest.raises(ValueError, match="disagree"):
        tensor_gauss_legendre([(0, 1), (0, 1)], (2, 3, 4))
    with pytest.raises(ValueError, match="disagree"):
        tensor_gauss_legendre([(0, 1)] * 3, 3, dim=2)
    with pytest.raises(ValueError, match="bandlimit"):
        nodes_for_bandlimit((0, 1), -1.0)
    with pytest.raises(TypeError, match="bandlimit"):
        nodes_for_bandlimit((0, 1), "big")
    for tol in (0.0, 1.0, np.inf):
        with pytest.raises(ValueError, match="tol"):
            nodes_for_bandlimit((0, 1), 1.0, tol=tol)
    with pytest.raises(ValueError, match="n must"):
        gl_error_bound_1d(1.0, 0)
    with pytest.raises(TypeError, match="CosNet"):
        QuadratureRule.for_field(object(), (0, 1))
    with pytest.raises(ValueError, match="disagree"):
        QuadratureRule.for_field(nf.CosNet(2, 3, 1.0, 2.0), [(0, 1)] * 3)


def test_a_huge_box_is_refused_at_once():
    """A box of 2e9 units: the node count comes from a bisection (no step-by-step search)
    and the rule is refused for its memory before anything is allocated."""
    counts = nodes_for_bandlimit((-1e9, 1e9), 12.0, dim=1)
    assert counts[0] > 10**9
    with pytest.raises(ValueError, match="quadrature nodes"):
        nf.Phi4(1.0, (-1e9, 1e9)).rule(nf.CosNet(2, 4, 1.0, 3.0))
