"""lambda phi^4 at first order (nnft_fast.theory.phi4): the tadpole and tree-level integrals
against independent integrations, quadrature convergence within the stated bounds,
symmetries, the finite-width first-order two-point function -> tadpole as 1/N, a
Monte Carlo check of it at N = 2-4 (plain NumPy on nf.preactivations), and the tadpole and
tree level of MLP outputs (nf.Network: closed forms for deep linear nets, a point-by-point
kernel_recursion sum, convergence in the nodes)."""

import math
from itertools import permutations

import numpy as np
import pytest
from scipy import integrate, special

import nnft_fast as nf
from nnft_fast.quadrature import QuadratureRule
from nnft_fast.theory import (
    cosnet_propagator,
    kernel_recursion,
    phi4_first_order_two_point,
    phi4_tadpole,
    phi4_tree_level,
)

from ._zscores import Z_PASS, Z_REJECT


def _gaussian_box_integral(points, box, length):
    """int_box prod_k exp(-|x_k - y|^2 / (2 length^2)) d^d y in closed form (erf per dim)."""
    points = np.asarray(points, dtype=np.float64)
    n = len(points)
    mean = points.mean(axis=0)
    out = math.exp(-np.sum((points - mean) ** 2) / (2 * length**2))
    s = math.sqrt(n / 2.0) / length
    for j, (lo, hi) in enumerate(box):
        out *= (
            0.5
            * math.sqrt(math.pi)
            / s
            * (special.erf(s * (hi - mean[j])) - special.erf(s * (lo - mean[j])))
        )
    return out


# --------------------------------------------------------------------------- tadpole
def test_tadpole_gaussian_kernel_closed_form():
    for d, box in ((1, [(-1.0, 1.5)]), (2, [(-1.0, 1.0), (0.0, 2.0)])):
        length, variance = 0.8, 1.7
        net = nf.CosNet.gaussian_kernel(d, 3, length=length, variance=variance)
        X = np.random.default_rng(d).uniform(-1.2, 1.6, (4, d))
        value, bound = phi4_tadpole(net, X, box, return_bound=True)
        exact = np.array(
            [
                [-0.5 * variance**3 * _gaussian_box_integral([xa, xb], box, length) for xb in X]
                for xa in X
            ]
        )
        assert bound < 1e-10
        assert np.max(np.abs(value - exact)) <= bound + 1e-15


def test_tadpole_against_quad_d1():
    net = nf.CosNet(1, 4, 1.0, 5.0)
    X = np.array([[-0.7], [0.2], [1.3]])
    box = (-1.0, 1.0)
    value, bound = phi4_tadpole(net, X, box, return_bound=True)
    g0 = float(cosnet_propagator(net, 0.0))
    for a in range(3):
        for b in range(3):

            def f(y):
                return float(
                    cosnet_propagator(net, X[a, 0] - y) * cosnet_propagator(net, y - X[b, 0])
                )

            ref, err = integrate.quad(f, -1.0, 1.0, epsabs=1e-14, epsrel=1e-13, limit=200)
            assert abs(value[a, b] - (-0.5 * g0 * ref)) <= bound + 1e-13 * abs(g0 * ref)
    assert bound < 1e-10


def _composite_gl(box, panels, per_panel):
    """An independent rule: per_panel-point Gauss-Legendre on panels x panels sub-boxes."""
    x, w = np.polynomial.legendre.leggauss(per_panel)
    axes, weights = [], []
    for lo, hi in box:
        edges = np.linspace(lo, hi, panels + 1)
        mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * np.diff(edges)
        axes.append((mid[:, None] + half[:, None] * x).ravel())
        weights.append((half[:, None] * w).ravel())
    grid = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grid], axis=1), np.multiply.outer(*weights).ravel()


def test_tadpole_and_tree_against_fine_sum_d2():
    net = nf.CosNet(2, 3, 1.0, 3.0)
    box = [(-1.0, 1.0), (-0.5, 1.0)]
    X = np.array([[0.0, 0.0], [0.5, -0.3], [-0.8, 0.9]])
    y, w = _composite_gl(box, 6, 14)
    gy = cosnet_propagator(net, np.linalg.norm(X[:, None, :] - y[None], axis=2))
    g0 = float(cosnet_propagator(net, 0.0))
    tadpole, bound2 = phi4_tadpole(net, X, box, return_bound=True)
    assert np.allclose(tadpole, -0.5 * g0 * (gy * w) @ gy.T, rtol=0, atol=bound2 + 1e-14)
    quads = np.array([(0, 1, 2, 0), (1, 1, 2, 2), (0, 0, 0, 0), (2, 1, 0, 1)])
    tree, bound4 = phi4_tree_level(net, X, box, quadruples=quads, return_bound=True)
    ref = np.array([-(gy[q[0]] * gy[q[1]] * gy[q[2]] * gy[q[3]]) @ w for q in quads])
    assert np.allclose(tree, ref, rtol=0, atol=bound4 + 1e-14)
    assert bound2 < 1e-10 and bound4 < 1e-10


def test_tree_level_gaussian_kernel_closed_form_and_symmetry():
    net = nf.CosNet.gaussian_kernel(2, 3, length=0.6, variance=0.9)
    box = [(-1.0, 1.0), (-1.0, 0.5)]
    X = np.random.default_rng(7).uniform(-1.0, 1.0, (4, 2))
    tree, bound = phi4_tree_level(net, X, box, return_bound=True)
    assert tree.shape == (4, 4, 4, 4) and bound < 1e-10
    for q in [(0, 1, 2, 3), (0, 0, 1, 1), (3, 3, 3, 3), (2, 0, 3, 0)]:
        exact = -(0.9**4) * _gaussian_box_integral(X[list(q)], box, 0.6)
        assert abs(tree[q] - exact) <= bound + 1e-15
    for perm in permutations(range(4)):
        assert np.allclose(tree, np.transpose(tree, perm), rtol=1e-14, atol=0)
    quads = np.array(
        [(a, b, c, d) for a in range(4) for b in range(4) for c in (0, 3) for d in (1, 2)]
    )
    at = phi4_tree_level(net, X, box, quadruples=quads)
    assert np.allclose(at, tree[tuple(quads.T)], rtol=1e-13, atol=0)
    assert np.all(tree < 0)


def test_tadpole_symmetric_and_translation_invariant_on_the_whole_line():
    net = nf.CosNet(1, 3, 1.0, 4.0)
    X = np.array([[-0.4], [0.3], [0.9]])
    value = phi4_tadpole(net, X, (-1.0, 1.0))
    assert np.array_equal(value, value.T) and np.all(np.diag(value) < 0)
    # the box moved with the points gives the same integral
    shifted = phi4_tadpole(net, X + 2.5, (1.5, 3.5))
    assert np.allclose(shifted, value, rtol=1e-12, atol=0)


@pytest.mark.parametrize(
    "net, box",
    [
        (nf.CosNet(1, 3, 1.0, 6.0), (-1.0, 1.5)),
        (nf.CosNet(2, 3, 0.5, 3.0, alpha=-1.0), [(-1.0, 1.0), (0.0, 1.0)]),
        (nf.CosNet.gaussian_kernel(1, 3, length=0.4), (-1.0, 1.0)),
    ],
)
def test_quadrature_convergence_within_the_bound(net, box):
    d = net.dim
    X = np.random.default_rng(3).uniform(-1.0, 1.0, (3, d))
    quads = np.array([(0, 1, 2, 0), (1, 2, 2, 1)])
    rule = QuadratureRule.for_field(net, box)
    ref_tad = phi4_tadpole(net, X, box, nodes=2 * rule.nodes)
    ref_tree = phi4_tree_level(net, X, box, quadruples=quads, nodes=2 * rule.nodes)
    # the bounds are on the y-quadrature; G itself is accurate to ~1e-13 relative
    floor2, floor4 = 1e-12 * np.max(np.abs(ref_tad)), 1e-12 * np.max(np.abs(ref_tree))
    errors = []
    for n in range(2, int(rule.nodes[0]) + 1, 2):
        tad, b2 = phi4_tadpole(net, X, box, nodes=n, return_bound=True)
        tree, b4 = phi4_tree_level(net, X, box, quadruples=quads, nodes=n, return_bound=True)
        e2, e4 = np.max(np.abs(tad - ref_tad)), np.max(np.abs(tree - ref_tree))
        assert e2 <= b2 + floor2 and e4 <= b4 + floor4, (n, e2, b2, e4, b4)
        errors.append(max(e2, e4))
    assert errors[0] > 1e-4 and errors[-1] < 1e-12
    assert all(b <= 10 * a + 1e-14 for a, b in zip(errors, errors[1:]))  # decreasing


def test_validation():
    net = nf.CosNet(2, 3, 1.0, 2.0)
    with pytest.raises(TypeError, match="CosNet"):
        phi4_tadpole("net", np.zeros((1, 2)), (0, 1))
    with pytest.raises(ValueError, match="dimension"):
        phi4_tadpole(net, np.zeros((2, 3)), (0, 1))
    with pytest.raises(ValueError, match="lo < hi"):
        phi4_tree_level(net, np.zeros((2, 2)), (1, 0))
    with pytest.raises(ValueError, match="quadruples"):
        phi4_tree_level(net, np.zeros((2, 2)), (0, 1), quadruples=[(0, 1, 2, 3)])
    with pytest.raises(ValueError, match="nodes"):
        phi4_first_order_two_point(net, np.zeros((2, 2)), (0, 1), nodes=0)


# --------------------------------------------------------------------------- MLP outputs
def test_cosnet_tadpole_and_tree_are_the_propagator_sums():
    # the shared kernel path gives the cos-net the G(0) G G and G G G G sums on its rule
    net = nf.CosNet(2, 3, 1.0, 3.0)
    box = [(-1.0, 1.0), (-0.5, 1.0)]
    X = np.array([[0.0, 0.0], [0.5, -0.3], [-0.8, 0.9]])
    rule = QuadratureRule.for_field(net, box)
    gy = cosnet_propagator(net, np.linalg.norm(X[:, None, :] - rule.points[None], axis=2))
    g0 = float(cosnet_propagator(net, 0.0))
    tad = -0.5 * g0 * ((gy * rule.weights) @ gy.T)
    assert np.allclose(phi4_tadpole(net, X, box), tad, rtol=1e-14, atol=0)
    tree = np.einsum("aq,bq,cq,dq,q->abcd", gy, gy, gy, gy, -rule.weights)
    assert np.allclose(phi4_tree_level(net, X, box), tree, rtol=1e-13, atol=0)


@pytest.mark.parametrize("box", [(-1.0, 1.5), (0.3, 2.0)])
def test_deep_linear_mlp_closed_form(box):
    # linear, cb = 0: K^(L)(x, y) = (prod_l C_W^(l)) x y / n_0, n_0 = 1, so the integrands
    # are c^3 x_a x_b y^4 and c^4 x_a x_b x_c x_d y^4, exact with 3 Gauss-Legendre nodes
    cw = (1.3, 0.7, 2.0)
    net = nf.Network((1, 8, 8, 1), activation="linear", cw=cw, cb=0.0)
    c = float(np.prod(cw))
    lo, hi = box
    y4 = (hi**5 - lo**5) / 5.0
    X = np.array([[-0.7], [0.2], [1.3], [0.9]])
    x = X[:, 0]
    tad_exact = -0.5 * c**3 * y4 * np.outer(x, x)
    tree_exact = -(c**4) * y4 * np.einsum("a,b,c,d->abcd", x, x, x, x)
    for nodes in (3, 5):
        tad = phi4_tadpole(net, X, box, nodes=nodes)
        tree = phi4_tree_level(net, X, box, nodes=nodes)
        assert np.max(np.abs(tad - tad_exact)) <= 1e-12 * np.max(np.abs(tad_exact))
        assert np.max(np.abs(tree - tree_exact)) <= 1e-12 * np.max(np.abs(tree_exact))
    quads = np.array([(0, 1, 2, 3), (3, 3, 0, 1), (2, 2, 2, 2)])
    at = phi4_tree_level(net, X, box, quadruples=quads, nodes=3)
    assert np.allclose(at, tree_exact[tuple(quads.T)], rtol=1e-12, atol=0)
    # too few nodes for y^4: 2 nodes integrate up to y^3 only
    assert np.max(np.abs(phi4_tadpole(net, X, box, nodes=2) - tad_exact)) > 1e-3 * np.max(
        np.abs(tad_exact)
    )


TANH_NET = nf.Network((2, 8, 8, 1), activation="tanh", cw=1.5, cb=0.1)
MLP_BOX = [(-1.0, 1.0), (-0.5, 1.0)]
MLP_X = np.array([[0.0, 0.0], [0.5, -0.3], [-0.8, 0.9]])
MLP_QUADS = np.array([(0, 1, 2, 0), (1, 1, 2, 2), (0, 0, 0, 0), (2, 1, 0, 1)])


def test_mlp_against_point_by_point_kernel_sum():
    net, box, X = TANH_NET, MLP_BOX, MLP_X
    nodes = (5, 4)
    # an independent rule and kernel: leggauss per axis, kernel_recursion on (x_a, y) pairs
    axes = []
    for (lo, hi), n in zip(box, nodes):
        t, w = np.polynomial.legendre.leggauss(n)
        axes.append((0.5 * (lo + hi) + 0.5 * (hi - lo) * t, 0.5 * (hi - lo) * w))
    tad_ref = np.zeros((3, 3))
    tree_ref = np.zeros((3, 3, 3, 3))
    for y0, w0 in zip(*axes[0]):
        for y1, w1 in zip(*axes[1]):
            kxy = np.empty(3)
            for a in range(3):
                k = kernel_recursion(net, np.array([X[a], (y0, y1)]))[-1]
                kxy[a], kyy = k[0, 1], k[1, 1]
            tad_ref += -0.5 * w0 * w1 * kyy * np.outer(kxy, kxy)
            tree_ref += -w0 * w1 * np.einsum("a,b,c,d->abcd", kxy, kxy, kxy, kxy)
    tad = phi4_tadpole(net, X, box, nodes=nodes)
    tree = phi4_tree_level(net, X, box, nodes=nodes)
    assert np.allclose(tad, tad_ref, rtol=1e-12, atol=0)
    assert np.allclose(tree, tree_ref, rtol=1e-12, atol=0)
    at = phi4_tree_level(net, X, box, quadruples=MLP_QUADS, nodes=nodes)
    assert np.allclose(at, tree_ref[tuple(MLP_QUADS.T)], rtol=1e-12, atol=0)
    assert np.array_equal(tad, tad.T) and np.all(tad < 0) and np.all(tree < 0)


def test_mlp_converges_as_nodes_double():
    net, box, X = TANH_NET, MLP_BOX, MLP_X
    ns = (1, 2, 4, 8)
    tad = {n: phi4_tadpole(net, X, box, nodes=n) for n in ns}
    tree = {n: phi4_tree_level(net, X, box, quadruples=MLP_QUADS, nodes=n) for n in ns}
    for v in (tad, tree):
        # |Q_2n - Q_n| at n = 1, 2, 4: each at most a fifth of the one before (measured
        # ratios 0.04-0.13), the last about 1e-3 to 1e-2 of the value
        diff = [np.max(np.abs(v[2 * n] - v[n])) for n in ns[:-1]]
        assert all(b < 0.2 * a for a, b in zip(diff, diff[1:])), diff
        assert diff[-1] < 2e-2 * np.max(np.abs(v[8])), diff


def test_mlp_validation():
    net = nf.Network((2, 4, 1), activation="relu")
    X = np.zeros((2, 2))
    for fn in (phi4_tadpole, phi4_tree_level):
        with pytest.raises(ValueError, match="nodes="):
            fn(net, X, (0, 1))
        with pytest.raises(ValueError, match="return_bound"):
            fn(net, X, (0, 1), nodes=4, return_bound=True)
        with pytest.raises(ValueError, match="dimension"):
            fn(net, np.zeros((2, 3)), (0, 1), nodes=4)
        with pytest.raises(ValueError, match="box"):
            fn(net, X, [(0, 1)] * 3, nodes=4)
        with pytest.raises(ValueError, match="nodes"):
            fn(net, X, (0, 1), nodes=0)
        with pytest.raises(TypeError, match="Network"):
            fn("net", X, (0, 1), nodes=4)


# --------------------------------------------------------------------------- finite width
def test_first_order_tends_to_tadpole_as_one_over_n():
    X = np.array([[-0.6], [0.0], [0.4], [1.1]])
    box = (-1.0, 1.0)
    nets = {
        n: nf.CosNet(1, n, 1.0, 4.0, alpha=0.5, amplitude="constant") for n in (1, 2, 4, 8, 10**6)
    }
    tad = phi4_tadpole(nets[1], X, box)
    d = {n: phi4_first_order_two_point(net, X, box) for n, net in nets.items()}
    for value in d.values():
        assert np.allclose(value, value.T, rtol=1e-14, atol=0)
    # exactly tadpole + c1 / N + c2 / N^2: fit from N = 1, 2, predict N = 4, 8
    c2 = 2 * (d[1] - tad) - 4 * (d[2] - tad)  # from D1 - T = c1 + c2, D2 - T = c1/2 + c2/4
    c1 = d[1] - tad - c2
    for n in (4, 8):
        assert np.allclose(d[n], tad + c1 / n + c2 / n**2, rtol=1e-11, atol=1e-13)
    assert np.max(np.abs(c1)) > 1e-2 * np.max(np.abs(tad))  # the 1/N term is there
    big = 10**6
    assert np.allclose(big * (d[big] - tad), c1, rtol=1e-4, atol=1e-12)
    # the tadpole's own infinite-width value does not depend on N
    assert np.array_equal(phi4_tadpole(nets[8], X, box), tad)


def _monte_carlo(net, X, box, n_networks, seed, batch=50_000):
    """-Cov(phi_a phi_b, (1/24) int_V phi^4) by plain NumPy on the field drawn at
    X u {nodes}, with the standard error of the mean of the centred products."""
    rule = QuadratureRule.for_field(net, box)
    points = np.concatenate([X, rule.points])
    b = len(X)
    ia, ib = np.triu_indices(b)
    o_parts, s_parts = [], []
    for start in range(0, n_networks, batch):
        count = min(batch, n_networks - start)
        phi = nf.preactivations(net, points, count, seed, first_network=start)[0][:, 0, :]
        s_parts.append(phi[:, b:] ** 4 @ rule.weights / 24.0)
        o_parts.append(phi[:, ia] * phi[:, ib])
    o, s = np.concatenate(o_parts), np.concatenate(s_parts)
    prod = (o - o.mean(axis=0)) * (s - s.mean())[:, None]
    value = np.zeros((b, b))
    error = np.zeros((b, b))
    value[ia, ib] = value[ib, ia] = -prod.mean(axis=0)
    error[ia, ib] = error[ib, ia] = prod.std(axis=0) / math.sqrt(n_networks)
    return value, error


MC_CASES = [
    (nf.CosNet(1, 2, 1.0, 3.0), (-1.0, 1.0), np.array([[-0.5], [0.1], [0.7]])),
    (
        nf.CosNet(1, 3, 1.0, 3.0, alpha=-1.0, amplitude="constant"),
        (-1.0, 1.0),
        np.array([[-0.8], [0.3], [1.2]]),
    ),
    (nf.CosNet.gaussian_kernel(1, 2, length=0.7), (-1.0, 0.5), np.array([[-0.5], [0.0], [0.6]])),
    (nf.CosNet(2, 4, 1.0, 2.0), [(-0.5, 0.5), (-0.5, 0.5)], np.array([[0.0, 0.0], [0.3, -0.2]])),
]


@pytest.mark.parametrize("net, box, X", MC_CASES)
def test_first_order_two_point_monte_carlo(net, box, X):
    value, error = _monte_carlo(net, X, box, 200_000, seed=11)
    exact, bound = phi4_first_order_two_point(net, X, box, return_bound=True)
    assert bound < 1e-10
    z = (value - exact) / error
    assert np.max(np.abs(z)) < Z_PASS - 0.5, z  # |z| < 4
    # negative control: the infinite-width tadpole is rejected at N = 2-4
    tadpole = phi4_tadpole(net, X, box)
    assert np.max(np.abs((value - tadpole) / error)) > Z_REJECT
