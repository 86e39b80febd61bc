"""Locality of the reconstructed couplings (nnft_fast.theory.locality, issue 16): a cos-net
field sampled on the quadrature nodes of a lambda phi^4 deformation; the Edgeworth quartic
coupling from the first-order connected four-point function is lambda w_a delta_abcd
(local, with the quadrature weights), the sextic one from the first-order six-point
function vanishes, while the free cos-net's own coupling at small width is not local.
z-scores with the package's jackknife errors; fixed seeds."""

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.theory import (
    coupling_locality,
    cosnet_two_point,
    local_quartic_coupling,
    measured_coupling,
    node_sextuples,
    quartic_coupling_on_nodes,
    sextic_coupling_on_nodes,
)

from ._zscores import Z_PASS, Z_REJECT, assert_agrees, assert_rejects

BOX = (-1.0, 1.0)
NODES = 4  # G on 4 Gauss-Legendre nodes at cut-off 8: condition number ~8
COUPLING = 0.5


def _net(width):
    # constant amplitudes: the free cumulants, hence the 1/N remainders of the first-order
    # functions, are ~3x smaller than for Gaussian amplitudes (below the errors at N = 200)
    return nf.CosNet(1, width, 1.0, 8.0, amplitude="constant")


def _deformed(width, n, seed, **kwargs):
    net = _net(width)
    deformation = nf.Phi4(COUPLING, BOX, nodes=NODES)
    rule = deformation.rule(net)
    ens = nf.sample(net, rule.points, n, seed=seed, deformation=deformation, **kwargs)
    return net, rule, ens


@pytest.fixture(scope="module")
def wide():
    """N = 200 on the 4 nodes, full four-point function and every sextuple of the nodes."""
    return _deformed(200, 200_000, 61, sextuples=node_sextuples(NODES))


def test_first_order_quartic_coupling_is_local(wide):
    net, rule, ens = wide
    loc = coupling_locality(ens, rule)
    expected = local_quartic_coupling(rule, COUPLING)
    # the diagonal is lambda w_a, resolved; every other entry is consistent with zero
    assert np.min(loc.diagonal.value / loc.diagonal.error) > 5.0
    assert_agrees(loc.diagonal, COUPLING * rule.weights, "diagonal vs lambda w_a")
    assert_agrees(loc.coupling, expected, "first-order quartic coupling vs lambda w delta")
    assert loc.max_off_diagonal_z < Z_PASS
    # negative controls: the symmetry factor 1/3! (x 4) and the wrong sign
    assert_rejects(loc.diagonal, 4.0 * COUPLING * rule.weights, "coupling 4 lambda w_a")
    assert_rejects(loc.diagonal, -COUPLING * rule.weights, "coupling -lambda w_a")
    # with the exact free two-point function instead of the measured one: the same
    exact_g = cosnet_two_point(net, rule.points)
    with_exact = coupling_locality(ens, rule, two_point=exact_g)
    assert_agrees(with_exact.coupling, expected, "quartic coupling with the exact G")
    np.testing.assert_allclose(
        quartic_coupling_on_nodes(ens, rule).value, loc.coupling.value, rtol=1e-12
    )


def test_free_cosnet_coupling_is_not_local(wide):
    """The free cos-net at N = 4 on the same nodes: its Edgeworth coupling -G4c . G^-1x4 has
    off-diagonal entries tens of sigma from zero and nearly all its weight off the
    diagonal -- against the deformed ensemble's local first-order coupling."""
    net = _net(4)
    _, rule, deformed = wide
    ens = nf.sample(net, rule.points, 100_000, seed=62)
    free = coupling_locality(ens, rule, source="free")
    assert free.max_off_diagonal_z > 3 * Z_REJECT
    assert free.off_diagonal_weight.value > 0.8
    local = coupling_locality(deformed, rule)
    a, b = free.off_diagonal_weight, local.off_diagonal_weight
    assert a.value - b.value > Z_REJECT * np.hypot(a.error, b.error)
    # the same coupling as theory.couplings.measured_coupling (another code path)
    lam, _ = measured_coupling(ens, 1)
    np.testing.assert_allclose(free.coupling.value, lam.value, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(free.coupling.error, lam.error, rtol=1e-6, atol=1e-12)


def test_contractions_against_einsum(wide):
    """With a fixed G the couplings are -lambda (first-order tensor) . G^-1 on every index:
    the package's first-order four- and six-point estimates contracted by einsum."""
    net, rule, ens = wide
    g = cosnet_two_point(net, rule.points)
    gi = np.linalg.inv(g)
    four = ens.first_order.four_point().value
    want4 = -COUPLING * np.einsum("efgh,ea,fb,gc,hd->abcd", four, gi, gi, gi, gi)
    got4 = quartic_coupling_on_nodes(ens, rule, two_point=g).value
    np.testing.assert_allclose(got4, want4, rtol=1e-8, atol=1e-10 * np.abs(want4).max())
    six = ens.first_order.connected_six_point().value
    rows = {tuple(t): i for i, t in enumerate(ens.sextuples.tolist())}
    full = np.empty((NODES,) * 6)
    for index in np.ndindex(*full.shape):
        full[index] = six[rows[tuple(sorted(index))]]
    want6 = -COUPLING * np.einsum(
        "pqrstu,pa,qb,rc,sd,te,uf->abcdef", full, *[gi] * 6, optimize=True
    )
    got6 = sextic_coupling_on_nodes(ens, rule, two_point=g).value
    np.testing.assert_allclose(got6, want6, rtol=1e-8, atol=1e-10 * np.abs(want6).max())


def test_first_order_sextic_coupling_vanishes(wide):
    """-lambda dG6c/dlambda . G^-1x6 is zero at leading order (one quartic vertex cannot
    connect six legs): consistent with zero at N = 200, while at N = 2 the finite-width
    remainder (free cumulants times the vertex, O(1/N)) is resolved -- the estimator has
    the power to see a non-zero sextic coupling."""
    _, rule, ens = wide
    sextic = sextic_coupling_on_nodes(ens, rule)
    assert_agrees(sextic, np.zeros_like(sextic.value), "first-order sextic coupling at N = 200")
    _, _, narrow = _deformed(2, 200_000, 63, sextuples=node_sextuples(NODES))
    small = coupling_locality(narrow, rule, order=6)
    assert np.max(np.abs(small.coupling.value / small.coupling.error)) > Z_REJECT


def test_validation(wide):
    net, rule, ens = wide
    other = nf.Phi4(COUPLING, BOX, nodes=NODES + 1).rule(net)
    with pytest.raises(ValueError, match="nodes"):
        coupling_locality(ens, other)
    with pytest.raises(ValueError, match="rule"):
        coupling_locality(ens)
    with pytest.raises(ValueError, match="order"):
        coupling_locality(ens, rule, order=5)
    with pytest.raises(ValueError, match="source"):
        coupling_locality(ens, rule, source="exact")
    with pytest.raises(ValueError, match="order=4"):
        coupling_locality(ens, rule, order=6, source="free")
    with pytest.raises(ValueError, match="positive definite"):
        coupling_locality(ens, rule, two_point=-np.eye(NODES))
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        coupling_locality(ens, rule, two_point=np.eye(3))
    with pytest.raises(TypeError, match="FieldEnsemble"):
        coupling_locality(object(), rule)
    free = nf.sample(net, rule.points, 50, seed=1)
    with pytest.raises(ValueError, match="deformation"):
        coupling_locality(free, rule)
    few = nf.sample(
        net,
        rule.points,
        50,
        seed=1,
        deformation=nf.Phi4(COUPLING, BOX, nodes=NODES),
        sextuples=node_sextuples(NODES)[:10],
        observables=["two_point"],
    )
    with pytest.raises(ValueError, match="node_sextuples"):
        coupling_locality(few, rule, order=6)
    with pytest.raises(ValueError, match="four_point"):
        coupling_locality(few, rule)
    assert node_sextuples(4).shape == (84, 6)
    assert node_sextuples(1).tolist() == [[0] * 6]
    with pytest.raises(ValueError):
        node_sextuples(0)
