"""lambda phi^4 on cos-net fields, measured (issue 16): the first-order estimators of the
deformed ensemble (``FieldEnsemble.first_order``) against the leading-order theory
(``nf.theory.phi4``) -- the tadpole and the tree-level vertex at large width, the exact
finite-width first-order two-point function at small width, the 1/N approach of the
first-order connected four-point function to tree level, the small-coupling slope of the
reweighted correlators, negative controls (wrong symmetry factor, wrong sign) and d = 2.

Every comparison is a z-score with the package's own jackknife errors (tests/_zscores.py);
seeds are fixed. The theory is evaluated on the deformation's own quadrature rule (same
box, same nodes), so the integral is the same discrete sum on both sides."""

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.theory import phi4_first_order_two_point, phi4_tadpole, phi4_tree_level

from ._zscores import Z_PASS, Z_REJECT, assert_agrees, assert_rejects, zscores

BOX = (-1.0, 1.0)
X1 = np.array([[-0.5], [0.0], [0.6], [1.4]])  # three points inside the box, one outside
QUADS = [(0, 1, 2, 3), (0, 0, 1, 1), (1, 1, 1, 1), (0, 2, 3, 3), (1, 1, 2, 2)]


def _sample(net, X, n, seed, coupling=1.0, box=BOX, nodes=None, **kwargs):
    deformation = nf.Phi4(coupling, box, nodes=nodes)
    return nf.sample(net, X, n, seed=seed, deformation=deformation, **kwargs)


# --------------------------------------------------------------------------- large width
@pytest.fixture(scope="module")
def wide():
    """N = 400, d = 1, the default rule (17 nodes, error bound < 1e-11)."""
    net = nf.CosNet(1, 400, 1.0, 3.0)
    ens = _sample(net, X1, 200_000, seed=101, quadruples=QUADS)
    return net, ens


def test_large_width_two_point_is_the_tadpole(wide):
    net, ens = wide
    got = ens.first_order.two_point()
    tadpole = phi4_tadpole(net, X1, BOX)
    # the finite-width remainder (exact at N = 400: ~0.6 sigma here) is below the errors
    exact = phi4_first_order_two_point(net, X1, BOX)
    assert np.max(np.abs(exact - tadpole) / got.error) < 1.0
    assert_agrees(got, exact, "first-order G at N = 400 vs exact")
    assert_agrees(got, tadpole, "first-order G at N = 400 vs the tadpole")
    # negative controls: 1/3! instead of 1/4! (x 4), and the wrong sign
    assert_rejects(got, 4.0 * tadpole, "tadpole with symmetry factor 1/3!")
    assert_rejects(got, -tadpole, "tadpole with the wrong sign")


def test_large_width_connected_four_point_is_tree_level(wide):
    net, ens = wide
    got = ens.first_order.connected_four_point()
    tree = phi4_tree_level(net, X1, BOX, quadruples=QUADS)
    assert np.all(got.error < 0.3 * np.abs(tree))  # resolved: each entry > 3 sigma from 0
    assert_agrees(got, tree, "first-order G4c at N = 400 vs tree level")
    assert_rejects(got, 4.0 * tree, "tree level with symmetry factor 1/3!")
    assert_rejects(got, -tree, "tree level with the wrong sign")


# --------------------------------------------------------------------------- finite width
@pytest.mark.parametrize(
    "net",
    [nf.CosNet(1, 4, 1.0, 3.0), nf.CosNet(1, 3, 1.0, 4.0, alpha=-1.0, amplitude="constant")],
    ids=["N4-gaussian", "N3-constant"],
)
def test_finite_width_two_point_is_exact(net):
    ens = _sample(net, X1, 1_000_000, seed=202)
    got = ens.first_order.two_point()
    assert_agrees(got, phi4_first_order_two_point(net, X1, BOX), f"first-order G at {net}")
    # the infinite-width tadpole is not the answer at this width
    assert_rejects(got, phi4_tadpole(net, X1, BOX), "the tadpole at small width")


def test_four_point_approaches_tree_level_as_one_over_n():
    """D(N) = dG4c/dlambda - tree level is O(1/N): N D(N) agrees at N = 4 and 16, while
    D itself changes by many sigma (a width-independent deviation is rejected)."""
    results = {}
    for width in (4, 16):
        net = nf.CosNet(1, width, 1.0, 3.0)
        ens = _sample(net, X1, 1_000_000, seed=303 + width, quadruples=QUADS)
        got = ens.first_order.connected_four_point()
        tree = phi4_tree_level(net, X1, BOX, quadruples=QUADS)
        results[width] = (got.value - tree, got.error)
    (d4, e4), (d16, e16) = results[4], results[16]
    # at N = 4 the first-order four-point function is clearly not tree level
    assert np.min(np.abs(d4 / e4)) > Z_REJECT
    # N D(N) is the same at both widths (the 1/N^2 remainder is below the errors here)
    z_scaled = zscores(4 * d4, np.hypot(4 * e4, 16 * e16), 16 * d16)
    assert np.max(np.abs(z_scaled)) < Z_PASS, z_scaled
    # ... while D itself shrinks: D(16) = D(4) is rejected
    z_flat = zscores(d4, np.hypot(e4, e16), d16)
    assert np.max(np.abs(z_flat)) > Z_REJECT, z_flat


# --------------------------------------------------------------------------- reweighting
def test_reweighted_slope_is_the_first_order_estimate():
    """On the same networks, the central difference (<X>_{+lambda} - <X>_{-lambda}) / 2
    lambda of the reweighted estimators is the first-order estimate, up to O(lambda^2)
    and the O(1/M) difference between plug-in and unbiased products -- both far below the
    statistical error -- for G, the connected four-point function at the quadruples and
    the full (B, B, B, B) tensor."""
    net = nf.CosNet(1, 6, 1.0, 3.0)
    coupling, n = 1e-3, 200_000
    plus = _sample(net, X1, n, seed=404, coupling=coupling, quadruples=QUADS)
    minus = _sample(net, X1, n, seed=404, coupling=-coupling, quadruples=QUADS)
    np.testing.assert_array_equal(plus.two_point().value, minus.two_point().value)
    for name in ("two_point", "connected_four_point", "four_point"):
        first = getattr(plus.first_order, name)()
        up, down = getattr(plus.reweighted, name)(), getattr(minus.reweighted, name)()
        slope = (up.value - down.value) / (2 * coupling)
        # the first-order estimate is resolved and the slope agrees far inside its errors
        assert np.max(np.abs(first.value / first.error)) > Z_REJECT, name
        assert np.max(np.abs(slope - first.value) / first.error) < 0.05, name
    # the ensembles at +-lambda hold the same first-order sums (no dependence on lambda)
    np.testing.assert_allclose(
        plus.first_order.two_point().value, minus.first_order.two_point().value, rtol=1e-12
    )


# --------------------------------------------------------------------------- d = 2
def test_two_dimensions_tadpole_and_tree_level():
    """d = 2: a 6 x 6 rule on the square [-1/2, 1/2]^2, four points in and around it."""
    net = nf.CosNet(2, 200, 1.0, 2.0)
    box = [(-0.5, 0.5), (-0.5, 0.5)]
    X = np.array([[0.0, 0.0], [0.3, -0.2], [-0.4, 0.4], [0.7, 0.1]])
    quads = [(0, 1, 2, 3), (0, 0, 0, 0), (0, 0, 1, 1), (1, 2, 3, 3)]
    ens = _sample(net, X, 100_000, seed=505, box=box, nodes=6, quadruples=quads)
    g = ens.first_order.two_point()
    tadpole = phi4_tadpole(net, X, box, nodes=6)
    exact = phi4_first_order_two_point(net, X, box, nodes=6)
    assert np.max(np.abs(exact - tadpole) / g.error) < 1.0  # large width: remainder < 1 sigma
    assert_agrees(g, tadpole, "d = 2 first-order G vs the tadpole")
    assert_rejects(g, 4.0 * tadpole, "d = 2 tadpole with symmetry factor 1/3!")
    g4 = ens.first_order.connected_four_point()
    tree = phi4_tree_level(net, X, box, quadruples=quads, nodes=6)
    assert_agrees(g4, tree, "d = 2 first-order G4c vs tree level")
    assert_rejects(g4, -tree, "d = 2 tree level with the wrong sign")
