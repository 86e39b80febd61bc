"""Quartic couplings of the first-order Edgeworth action (nnft_fast.theory.couplings).

Three layers of checks:
- exact algebra (contractions, symmetries, closed forms, batching, and the layer action
  against the same formula applied to the full n*B-component field);
- numerical quadrature: exp(-S) built from (G, G4c) must give back G and G4c up to O(lam^2)
  (residual ratio ~4 when G4c doubles); a wrong quadratic correction leaves O(lam);
- measured ensembles: jackknife estimates of lam and of the quadratic term at layer 2
  of a width-4 ReLU network (where the four-point function is exact at any width) agree
  with the predicted couplings, and layer 1 (exactly Gaussian) gives lam = 0.
"""

import itertools

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.theory import same_neuron_connected, vertex_recursion
from nnft_fast.theory.couplings import (
    action_constant,
    evaluate_action,
    layer_coupling,
    measured_coupling,
    quartic_coupling,
)

Z_PASS = 4.0
Z_REJECT = 8.0


# ----------------------------------------------------------------------------- helpers


def random_spd(rng, b):
    a = rng.normal(size=(b, b))
    return a @ a.T + 0.5 * np.eye(b)


def full_symmetrise(t):
    return sum(np.transpose(t, p) for p in itertools.permutations(range(4))) / 24.0


def pair_symmetrise(t):
    """Symmetric in (ab), (cd) and (ab)<->(cd): the symmetries of a distinct-neuron C."""
    t = 0.5 * (t + t.transpose(1, 0, 2, 3))
    t = 0.5 * (t + t.transpose(0, 1, 3, 2))
    return 0.5 * (t + t.transpose(2, 3, 0, 1))


def three_pairings(c):
    return c + np.einsum("acbd->abcd", c) + np.einsum("adbc->abcd", c)


def raise_all(t, g):
    """t_abcd G_aa' G_bb' G_cc' G_dd'."""
    return np.einsum("abcd,ae,bf,cg,dh->efgh", t, g, g, g, g, optimize=True)


def grid(b, half_width, n_points):
    """Uniform tensor grid on [-h, h]^b: points (N, b) and the cell volume."""
    x = np.linspace(-half_width, half_width, n_points)
    pts = np.stack(np.meshgrid(*([x] * b), indexing="ij"), axis=-1).reshape(-1, b)
    return pts, (x[1] - x[0]) ** b


def moments(pts, weight):
    """Normalisation, <phi_a phi_b>, and the connected <phi_a phi_b phi_c phi_d>."""
    z = weight.sum()
    p = weight / z
    m2 = np.einsum("n,na,nb->ab", p, pts, pts)
    m4 = np.einsum("n,na,nb,nc,nd->abcd", p, pts, pts, pts, pts, optimize=True)
    wick = (
        np.einsum("ab,cd->abcd", m2, m2)
        + np.einsum("ac,bd->abcd", m2, m2)
        + np.einsum("ad,bc->abcd", m2, m2)
    )
    return z, m2, m4 - wick


def edgeworth_residuals(g, g4c, pts, vol, quadratic=None):
    """|Z - 1|, max|<phi phi> - G|, max|G4c_num - G4c| for p = exp(-S(G, G4c))."""
    lam, m = quartic_coupling(g, g4c)
    if quadratic is not None:
        m = quadratic
    s = evaluate_action(pts, m, lam, action_constant(g, lam))
    z, m2, c4 = moments(pts, np.exp(-s))
    return abs(z * vol - 1.0), np.max(np.abs(m2 - g)), np.max(np.abs(c4 - g4c))


def zmax(est, exact):
    z = est.zscore(exact)
    assert np.all(np.isfinite(z)), z
    return float(np.max(np.abs(z)))


# ----------------------------------------------------------------------------- exact algebra


def test_coupling_contracts_back_to_minus_four_point_and_is_symmetric():
    rng = np.random.default_rng(11)
    g = random_spd(rng, 3)
    g4c = full_symmetrise(rng.normal(size=(3,) * 4))
    lam, m = quartic_coupling(g, g4c)
    np.testing.assert_allclose(raise_all(lam, g), -g4c, atol=1e-11)
    for p in itertools.permutations(range(4)):
        np.testing.assert_allclose(np.transpose(lam, p), lam, atol=1e-12)
    gi = np.linalg.inv(g)
    np.testing.assert_allclose(m, gi - 0.5 * np.einsum("abcd,ab->cd", lam, g), atol=1e-12)
    np.testing.assert_allclose(m, m.T, atol=0)
    # equivalent form: M = G^-1 + (1/2) G^-1 (sum_ab G4c_abcd G^-1_ab) G^-1
    np.testing.assert_allclose(
        m, gi + 0.5 * gi @ np.einsum("abcd,ab->cd", g4c, gi) @ gi, atol=1e-11
    )


def test_single_input_closed_forms():
    g, g4c = 1.7, -0.37
    lam, m = quartic_coupling([[g]], np.full((1, 1, 1, 1), g4c))
    assert lam.shape == (1, 1, 1, 1) and m.shape == (1, 1)
    assert lam[0, 0, 0, 0] == pytest.approx(-g4c / g**4, rel=1e-14)
    assert m[0, 0] == pytest.approx(1.0 / g + g4c / (2.0 * g**3), rel=1e-14)
    c = action_constant([[g]], lam)
    assert c == pytest.approx(0.5 * np.log(2 * np.pi * g) - g4c / (8 * g**2), rel=1e-14)
    # Gaussian: no coupling, M = G^-1
    lam0, m0 = quartic_coupling([[g]], np.zeros((1, 1, 1, 1)))
    assert np.all(lam0 == 0) and m0[0, 0] == pytest.approx(1 / g)


def test_batched_over_replica_axes():
    rng = np.random.default_rng(3)
    gs = np.stack([random_spd(rng, 2) for _ in range(5)])
    g4s = np.stack([full_symmetrise(rng.normal(size=(2,) * 4)) for _ in range(5)])
    lam, m = quartic_coupling(gs, g4s)
    assert lam.shape == (5, 2, 2, 2, 2) and m.shape == (5, 2, 2)
    for r in range(5):
        lr, mr = quartic_coupling(gs[r], g4s[r])
        np.testing.assert_allclose(lam[r], lr, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(m[r], mr, rtol=1e-13, atol=1e-13)
    # one G broadcast against several four-point functions
    lam_b, _ = quartic_coupling(gs[0], g4s)
    np.testing.assert_allclose(lam_b[3], quartic_coupling(gs[0], g4s[3])[0], atol=1e-13)
    assert action_constant(gs, lam).shape == (5,)


def test_layer_action_equals_edgeworth_of_the_full_layer_field():
    """n neurons x B inputs as one n*B-component field: G = 1 x K and the permutation-
    invariant connected function; the generic formula must give delta-structured lam
    and 1 x M with M, lam, onsite from layer_coupling."""
    rng = np.random.default_rng(5)
    n, b = 3, 2
    k = random_spd(rng, b)
    c = pair_symmetrise(rng.normal(size=(b,) * 4))
    e = full_symmetrise(rng.normal(size=(b,) * 4))
    same = three_pairings(c) + e
    d = np.eye(n)
    delta4 = np.zeros((n,) * 4)
    for i in range(n):
        delta4[i, i, i, i] = 1.0

    def structured(dist, onsite):
        t = (
            np.einsum("ij,kl,abcd->iajbkcld", d, d, dist)
            + np.einsum("ik,jl,acbd->iajbkcld", d, d, dist)
            + np.einsum("il,jk,adbc->iajbkcld", d, d, dist)
            + np.einsum("ijkl,abcd->iajbkcld", delta4, onsite)
        )
        return t.reshape((n * b,) * 4)

    g_full = np.kron(d, k)
    lam_full, m_full = quartic_coupling(g_full, structured(c, e))
    lam, m, onsite = layer_coupling(k, c, same, n)
    np.testing.assert_allclose(m_full, np.kron(d, m), atol=1e-11)
    np.testing.assert_allclose(lam_full, structured(lam, onsite), atol=1e-11)
    np.testing.assert_allclose(onsite, -raise_all(e, np.linalg.inv(k)), atol=1e-11)
    # rotation-invariant default (same_connected=None) == same = three pairings of C
    lam_r, m_r, on_r = layer_coupling(k, c, None, n)
    lam_full_r, m_full_r = quartic_coupling(g_full, structured(c, np.zeros_like(e)))
    np.testing.assert_allclose(m_full_r, np.kron(d, m_r), atol=1e-11)
    assert np.all(on_r == 0) and np.array_equal(lam_r, lam)
    # one neuron: the layer action is the one-field action of the same-neuron function
    _, m1, _ = layer_coupling(k, c, same, 1)
    lam_s, m_s = quartic_coupling(k, same)
    np.testing.assert_allclose(m1, m_s, atol=1e-12)
    np.testing.assert_allclose(
        lam + np.einsum("acbd->abcd", lam) + np.einsum("adbc->abcd", lam) + onsite,
        lam_s,
        atol=1e-11,
    )
    # Roberts-Yaida form, rotation-invariant law: M = K^-1 + (1/2) K_ab [n v_abcd + 2 v_acbd]
    v = -lam
    ry = np.linalg.inv(k) + 0.5 * (
        n * np.einsum("abcd,ab->cd", v, k) + 2 * np.einsum("acbd,ab->cd", v, k)
    )
    np.testing.assert_allclose(m_r, ry, atol=1e-11)


# ----------------------------------------------------------------------------- quadrature


def test_edgeworth_action_reproduces_correlators_one_input():
    """B = 1: exp(-S) on a fine grid gives back G, G4c and Z = 1 up to O(lam^2)."""
    g = 1.3
    pts, vol = grid(1, 12.0, 4001)
    res = {}
    for eps in (0.03, 0.06):
        g4c = np.full((1, 1, 1, 1), -eps * g**2)  # lam = eps / G^2 > 0: stable action
        res[eps] = np.array(edgeworth_residuals(np.array([[g]]), g4c, pts, vol))
    ratio = res[0.06] / res[0.03]
    assert np.all((ratio > 3.3) & (ratio < 4.7)), ratio
    assert res[0.03][1] < 2e-4 * g and res[0.03][2] < 5e-3 * g**2
    # Negative controls: no quadratic correction, or the tadpole correction with the
    # wrong sign (correct: M = 1/G - lam G / 2 = (1 - eps/2)/G) -> O(lam) error in G
    for wrong in (lambda eps: 1.0 / g, lambda eps: (1.0 + 0.5 * eps) / g):
        bad = [
            edgeworth_residuals(
                np.array([[g]]),
                np.full((1,) * 4, -eps * g**2),
                pts,
                vol,
                quadratic=np.array([[wrong(eps)]]),
            )[1]
            for eps in (0.03, 0.06)
        ]
        assert 1.6 < bad[1] / bad[0] < 2.5, bad  # first order in lam: doubles with eps
        assert bad[0] > 20 * res[0.03][1], (bad, res[0.03])


def test_edgeworth_action_reproduces_correlators_two_inputs():
    """B = 2 with correlated inputs: full tensors G_ab and G4c_abcd back to O(lam^2)."""
    g = np.array([[1.0, 0.45], [0.45, 0.8]])
    p = np.array([[0.7, -0.2], [-0.2, 1.1]])
    base = three_pairings(np.einsum("ab,cd->abcd", p, p))  # lam = eps (Q Q + 2 perms) >= 0
    pts, vol = grid(2, 9.0, 241)  # converged to ~1e-13 (checked against 361 points)
    res = {}
    for eps in (0.002, 0.004):  # lam_abcd G_ab G_cd = 23.6 eps
        res[eps] = np.array(edgeworth_residuals(g, -eps * base, pts, vol))
    ratio = res[0.004] / res[0.002]
    assert np.all((ratio > 3.3) & (ratio < 4.7)), ratio
    # without the quadratic correction the two-point residual is first order
    bad = [
        edgeworth_residuals(g, -eps * base, pts, vol, quadratic=np.linalg.inv(g))[1]
        for eps in (0.002, 0.004)
    ]
    assert 1.6 < bad[1] / bad[0] < 2.5, bad  # first order in lam: doubles with eps
    assert bad[0] > 10 * res[0.002][1], (bad, res[0.002])


def layer_action(pts, m, lam, onsite):
    """S of layer_coupling for B = 1, n neurons = pts.shape[1] (constant dropped)."""
    r2 = np.sum(pts**2, axis=1)
    return (
        0.5 * m[0, 0] * r2
        + lam.item() * r2**2 / 8.0
        + onsite.item() * np.sum(pts**4, axis=1) / 24.0
    )


def test_layer_action_quadrature_three_neurons():
    """n = 3 neurons, one input, with an on-site excess: <phi_1^2> = K,
    <phi_1^2 phi_2^2>_c = C, <phi_1^4>_c = same, up to O(lam^2); the neuron count in the
    quadratic term matters (n -> n - 1 leaves an O(lam) error)."""
    k = 0.9
    pts, vol = grid(3, 8.5, 121)

    def residuals(eps, n_used):
        c = np.full((1,) * 4, -eps * k**2)
        same = np.full((1,) * 4, -3.5 * eps * k**2)  # excess E = -0.5 eps K^2
        lam, m, onsite = layer_coupling([[k]], c, same, n_used)
        w = np.exp(-layer_action(pts, m, lam, onsite))
        w /= w.sum()
        x2, y2 = pts[:, 0] ** 2, pts[:, 1] ** 2
        k_num = w @ x2
        c_num = w @ (x2 * y2) - k_num**2
        same_num = w @ (x2 * x2) - 3.0 * k_num**2
        return np.abs([k_num - k, c_num - c.item(), same_num - same.item()])

    good = {eps: residuals(eps, 3) for eps in (0.01, 0.02)}
    ratio = good[0.02] / good[0.01]
    assert np.all((ratio > 3.3) & (ratio < 4.7)), ratio
    wrong = residuals(0.01, 2)[0]
    assert wrong > 10 * good[0.01][0]


# ----------------------------------------------------------------------------- measured

X2 = np.array([[0.9, -0.6, 1.3], [-0.4, 1.1, 0.5]])


@pytest.fixture(scope="module")
def relu_width4():
    """Layer 2 of (3, 4, 4) ReLU, Gaussian weights: K^(2) and the four-point functions
    (V^(2)/n_1 distinct, three pairings of V^(2)/n_1 same) are exact at any width."""
    net = nf.Network((3, 4, 4), "relu", "gaussian", cw=2.0)
    ens = nf.sample(net, X2, 200_000, seed=20240)
    ks, vs = vertex_recursion(net, X2)
    return net, ens, ks, vs


def test_measured_same_neuron_coupling_matches_prediction(relu_width4):
    net, ens, ks, vs = relu_width4
    k2, same2 = ks[1], same_neuron_connected(vs[1], net.widths[1])
    lam_pred, m_pred = quartic_coupling(k2, same2)
    lam, m = measured_coupling(ens, 2, neurons="same")
    assert lam.value.shape == (2,) * 4 and m.value.shape == (2, 2)
    assert np.all(np.isfinite(lam.error)) and np.all(lam.error > 0) and np.all(m.error > 0)
    assert zmax(lam, lam_pred) < Z_PASS
    assert zmax(m, m_pred) < Z_PASS
    # power: the sign of lam, and the quadratic correction, are seen at many sigma
    assert zmax(lam, -lam_pred) > Z_REJECT
    assert zmax(m, np.linalg.inv(k2)) > Z_REJECT
    assert zmax(m, np.linalg.inv(k2) - np.einsum("abcd,ab->cd", lam_pred, k2)) > Z_REJECT
    # the same numbers as the generic formula applied to the measured correlators
    direct, _ = quartic_coupling(
        ens.two_point(2).value, ens.four_point(2, connected=True, neurons="same").value
    )
    np.testing.assert_allclose(lam.value, direct, rtol=1e-12, atol=1e-12)


def test_measured_layer_coupling_matches_prediction(relu_width4):
    net, ens, ks, vs = relu_width4
    n1, n2 = net.widths[1], net.widths[2]
    k2, c2 = ks[1], vs[1] / n1
    lam_pred, m_pred, _ = layer_coupling(k2, c2, same_neuron_connected(vs[1], n1), n2)
    lam, m = measured_coupling(ens, 2, neurons="distinct")
    assert zmax(lam, lam_pred) < Z_PASS
    assert zmax(m, m_pred) < Z_PASS
    same2 = same_neuron_connected(vs[1], n1)
    for wrong_n in (n2 - 1, n2 + 1):  # the neuron count in the tadpole is resolved
        assert zmax(m, layer_coupling(k2, c2, same2, wrong_n)[1]) > Z_REJECT
    # fewer neurons kept (marginal): the quadratic coupling follows n
    _, m1 = measured_coupling(ens, 2, neurons="distinct", n_neurons=1)
    assert zmax(m1, layer_coupling(k2, c2, None, 1)[1]) < Z_PASS


def test_layer_one_is_gaussian_coupling_zero(relu_width4):
    net, ens, _, _ = relu_width4
    k1 = net.cw_array[0] * X2 @ X2.T / net.widths[0]
    lam, m = measured_coupling(ens, 1, neurons="same")
    assert np.all(np.isfinite(lam.error)) and np.all(lam.error > 0)
    assert zmax(lam, np.zeros_like(lam.value)) < Z_PASS
    assert zmax(m, np.linalg.inv(k1)) < Z_PASS
    lam_d, m_d = measured_coupling(ens, 1, neurons="distinct")
    assert np.all(lam_d.error > 0)
    assert zmax(lam_d, np.zeros_like(lam_d.value)) < Z_PASS
    assert zmax(m_d, np.linalg.inv(k1)) < Z_PASS


# ----------------------------------------------------------------------------- bad input


def test_bad_inputs_raise():
    g = np.array([[1.0, 0.2], [0.2, 0.5]])
    g4 = np.zeros((2,) * 4)
    with pytest.raises(ValueError, match="square"):
        quartic_coupling(np.ones((2, 3)), g4)
    with pytest.raises(ValueError, match="square"):
        quartic_coupling(np.ones(3), g4)
    with pytest.raises(ValueError, match="symmetric"):
        quartic_coupling([[1.0, 0.2], [0.1, 0.5]], g4)
    with pytest.raises(ValueError, match="positive definite"):
        quartic_coupling([[1.0, 1.0], [1.0, 1.0]], g4)  # singular
    with pytest.raises(ValueError, match="positive definite"):
        quartic_coupling([[1.0, 0.0], [0.0, -0.5]], g4)  # indefinite
    with pytest.raises(ValueError, match="non-finite"):
        quartic_coupling([[np.nan, 0.0], [0.0, 1.0]], g4)
    with pytest.raises(ValueError, match="shape"):
        quartic_coupling(g, np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="shape"):
        quartic_coupling(g, np.zeros((3,) * 4))
    with pytest.raises(ValueError, match="broadcast"):
        quartic_coupling(np.stack([g] * 3), np.zeros((2,) + (2,) * 4))
    asym = np.zeros((2,) * 4)
    asym[0, 0, 1, 1] = asym[1, 1, 0, 0] = 1.0  # pair-symmetric only
    with pytest.raises(ValueError, match="fully symmetric"):
        quartic_coupling(g, asym)
    layer_coupling(g, asym, None, 2)  # fine for distinct
    asym[0, 1, 0, 0] = 1.0
    with pytest.raises(ValueError, match="symmetric"):
        layer_coupling(g, asym, None, 2)
    with pytest.raises(ValueError, match="n_neurons"):
        layer_coupling(g, g4, None, 0)
    with pytest.raises(TypeError, match="n_neurons"):
        layer_coupling(g, g4, None, True)
    with pytest.raises(TypeError):
        quartic_coupling("abc", g4)


def test_measured_coupling_bad_arguments(relu_width4):
    _, ens, _, _ = relu_width4
    with pytest.raises(ValueError, match="neurons"):
        measured_coupling(ens, 2, neurons="both")
    with pytest.raises(ValueError, match="n_neurons"):
        measured_coupling(ens, 2, neurons="same", n_neurons=3)
    with pytest.raises(ValueError):
        measured_coupling(ens, 3)
    with pytest.raises(TypeError):
        measured_coupling(np.eye(2), 1)
    net = nf.Network((3, 4), "relu", "gaussian", cw=2.0)
    two_only = nf.sample(net, X2, 100, seed=1, observables=("two_point",))
    with pytest.raises(ValueError, match="four_point"):
        measured_coupling(two_only, 1)
    repeated = nf.sample(net, np.stack([X2[0], X2[0]]), 100, seed=1)
    with pytest.raises(ValueError, match="positive definite"):
        measured_coupling(repeated, 1)
