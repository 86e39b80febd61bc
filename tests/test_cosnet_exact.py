"""Measured cos-net ensembles against the exact finite-width correlators of
``nnft_fast.theory.cosnet`` (docs/exact-results.md#cos-net-fields): two-point functions
(matrix and by separation), connected four-point functions (full tensor and sampled
quadruples of one ensemble, same and distinct outputs) and connected six-point functions,
over d = 1, 2, 3, alpha in {-1, 0, 1/2}, both amplitude laws and the Gaussian-momentum
family. z-scores use the ensembles' own jackknife errors; negative controls (a wrong
amplitude law, a wrong alpha normalisation, a wrong width, the wrong output structure)
must be rejected by the same comparison. Widths are small (N = 1-4) so that the 1/N and
1/N^2 connected functions stand far above the noise."""

import dataclasses
import functools
import math

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.theory import (
    cosnet_four_point,
    cosnet_propagator,
    cosnet_six_point,
    cosnet_two_point,
)

from ._zscores import assert_agrees, assert_rejects, zscores

N_NETWORKS = 100_000
N_POINTS = 5
QUADRUPLES = np.array(
    [[0, 1, 2, 3], [0, 0, 1, 1], [4, 4, 4, 4], [0, 1, 0, 1], [1, 2, 3, 4], [0, 2, 2, 4]]
)
SEXTUPLES = np.array(
    [[0, 1, 2, 3, 4, 0], [0, 0, 1, 1, 2, 2], [3, 3, 3, 3, 3, 3], [0, 1, 2, 3, 4, 4]]
)

CASES = {
    "d1-a0-gauss-N2": nf.CosNet(1, 2, mass=1.0, cutoff=4.0, alpha=0.0),
    "d1-a0.5-gauss-N4": nf.CosNet(1, 4, mass=0.7, cutoff=5.0, alpha=0.5),
    "d2-a0.5-const-N3": nf.CosNet(2, 3, mass=1.0, cutoff=4.0, alpha=0.5, amplitude="constant"),
    "d2-a-1-const-N2": nf.CosNet(2, 2, mass=1.0, cutoff=4.0, alpha=-1.0, amplitude="constant"),
    "d3-a-1-gauss-N2": nf.CosNet(3, 2, mass=1.0, cutoff=3.0, alpha=-1.0),
    "d3-a0.5-const-N2": nf.CosNet(3, 2, mass=1.0, cutoff=3.0, alpha=0.5, amplitude="constant"),
    "d3-a0-gauss-N1": nf.CosNet(3, 1, mass=0.6, cutoff=3.0, alpha=0.0),
    "gaussmom-d2-gauss-N2": nf.CosNet.gaussian_kernel(2, 2, length=0.8, variance=1.5),
    "gaussmom-d3-const-N3": nf.CosNet.gaussian_kernel(
        3, 3, length=1.2, variance=0.7, amplitude="constant"
    ),
}
PROPAGATOR_CASES = [name for name, net in CASES.items() if net.momenta == "propagator"]


def points(dim, seed, n=N_POINTS, scale=0.8):
    return scale * np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, dim))


@functools.cache
def ensemble(name):
    """One ensemble per case (cached for the module): the field on 5 points, with the full
    four-point tensor, QUADRUPLES and SEXTUPLES."""
    net = CASES[name]
    X = points(net.dim, seed=sorted(CASES).index(name))
    ens = nf.sample(
        net,
        X,
        N_NETWORKS,
        seed=1000 + sorted(CASES).index(name),
        quadruples=QUADRUPLES,
        sextuples=SEXTUPLES,
    )
    return net, X, ens


def upper(a):
    """The distinct entries a <= b of a symmetric (B, B) array."""
    return a[np.triu_indices(a.shape[0])]


# --------------------------------------------------------------------------- two-point
@pytest.mark.parametrize("name", list(CASES))
def test_two_point(name):
    net, X, ens = ensemble(name)
    g = ens.two_point()
    assert_agrees(g, cosnet_two_point(net, X), f"{name}: two-point")
    r, by_sep = ens.two_point_by_separation()
    assert_agrees(by_sep, cosnet_propagator(net, r), f"{name}: G(r)")
    z = upper(zscores(g.value, g.error, cosnet_two_point(net, X)))
    assert np.mean(z**2) < 4.0  # loose: the 15 entries are strongly correlated


@pytest.mark.parametrize(
    "net, X",
    [
        (
            nf.CosNet(2, 3, mass=0.8, cutoff=5.0, alpha=0.5),
            0.5 * np.stack(np.meshgrid(np.arange(4), np.arange(4)), -1).reshape(-1, 2),
        ),
        (nf.CosNet.gaussian_kernel(1, 2, length=1.5, variance=0.9), 0.4 * np.arange(12.0)[:, None]),
    ],
    ids=["d2-grid-4x4", "gaussmom-d1-line-12"],
)
def test_two_point_on_grids(net, X):
    """Regular point sets (many pairs per separation): G(x_a, x_b) and the translation
    average G(r) against the propagator; the wrong length scale / mass is rejected."""
    ens = nf.sample(net, X, 50_000, seed=21, observables=["two_point"])
    assert_agrees(ens.two_point(), cosnet_two_point(net, X), "grid: two-point")
    r, by_sep = ens.two_point_by_separation()
    assert len(r) < len(X) * (len(X) + 1) // 2  # separations are shared
    assert_agrees(by_sep, cosnet_propagator(net, r), "grid: G(r)")
    if net.momenta == "gaussian":
        wrong = dataclasses.replace(net, length=1.2 * net.length)
    else:
        wrong = dataclasses.replace(net, mass=1.2 * net.mass)
    assert_rejects(by_sep, cosnet_propagator(wrong, r), "grid: G(r) of a wrong scale")


@pytest.mark.parametrize("name", PROPAGATOR_CASES)
def test_two_point_rejects_wrong_alpha_normalisation(name):
    """Amplitudes normalised with Z of another alpha': E[A_wrong cos] = (Z_alpha' / Z_alpha) G."""
    net, X, ens = ensemble(name)
    other = dataclasses.replace(net, alpha=net.alpha + 1.0)
    wrong = other.normalisation / net.normalisation * cosnet_two_point(net, X)
    assert_rejects(ens.two_point(), wrong, f"{name}: two-point with Z of alpha + 1")


# --------------------------------------------------------------------------- four-point
@pytest.mark.parametrize("name", list(CASES))
def test_connected_four_point(name):
    """The full (B, B, B, B) tensor and the sampled quadruples of the same ensemble."""
    net, X, ens = ensemble(name)
    full = ens.four_point()
    exact = cosnet_four_point(net, X)
    assert_agrees(full, exact, f"{name}: four-point tensor")
    assert np.max(np.abs(exact / full.error)) > 15  # the 1/N signal is resolved
    quads = ens.connected_four_point()
    assert_agrees(quads, cosnet_four_point(net, X, QUADRUPLES), f"{name}: quadruples")
    np.testing.assert_allclose(cosnet_four_point(net, X, QUADRUPLES), exact[tuple(QUADRUPLES.T)])


def test_connected_four_point_eight_points():
    """B = 8 (4096 entries, 330 distinct by symmetry) with 40 random quadruples, one
    ensemble; the Gaussian-amplitude formula is rejected."""
    net = nf.CosNet(2, 2, mass=1.0, cutoff=4.0, alpha=0.0, amplitude="constant")
    X = points(2, seed=3, n=8)
    quads = np.random.default_rng(4).integers(0, 8, size=(40, 4))
    ens = nf.sample(net, X, 50_000, seed=9, quadruples=quads)
    exact = cosnet_four_point(net, X)
    assert_agrees(ens.four_point(), exact, "B = 8: four-point tensor")
    assert_agrees(ens.connected_four_point(), exact[tuple(quads.T)], "B = 8: quadruples")
    wrong = cosnet_four_point(dataclasses.replace(net, amplitude="gaussian"), X)
    assert_rejects(ens.four_point(), wrong, "B = 8: Gaussian amplitudes")


@pytest.mark.parametrize("name", list(CASES))
def test_four_point_rejects_wrong_amplitude_law(name):
    """The exact formula with the other amplitude law (c4 = 3 <-> 1)."""
    net, X, ens = ensemble(name)
    other = "constant" if net.amplitude == "gaussian" else "gaussian"
    wrong = cosnet_four_point(dataclasses.replace(net, amplitude=other), X)
    assert_rejects(ens.four_point(), wrong, f"{name}: four-point with {other} amplitudes")
    wrong_q = cosnet_four_point(dataclasses.replace(net, amplitude=other), X, QUADRUPLES)
    assert_rejects(ens.connected_four_point(), wrong_q, f"{name}: quadruples, {other}")


@pytest.mark.parametrize("name", list(CASES))
def test_four_point_rejects_wrong_width(name):
    net, X, ens = ensemble(name)
    wrong = cosnet_four_point(dataclasses.replace(net, width=2 * net.width), X)
    assert_rejects(ens.four_point(), wrong, f"{name}: four-point at width 2N")


@pytest.mark.parametrize("name", PROPAGATOR_CASES)
def test_four_point_rejects_wrong_alpha(name):
    """H of another alpha (its Z_alpha and A_alpha): G is the same for every alpha, so only
    the four-point function tells the momentum law."""
    net, X, ens = ensemble(name)
    other = dataclasses.replace(net, alpha=net.alpha + 1.0)
    np.testing.assert_allclose(cosnet_two_point(other, X), cosnet_two_point(net, X), atol=1e-13)
    assert_rejects(ens.four_point(), cosnet_four_point(other, X), f"{name}: H of alpha + 1")


# --------------------------------------------------------------------------- six-point
@pytest.mark.parametrize("name", list(CASES))
def test_connected_six_point(name):
    net, X, ens = ensemble(name)
    assert_agrees(
        ens.connected_six_point(), cosnet_six_point(net, X, SEXTUPLES), f"{name}: six-point"
    )


SIX_CASES = {
    "d1-a0-const-N1": nf.CosNet(1, 1, mass=1.0, cutoff=4.0, alpha=0.0, amplitude="constant"),
    "d2-a0.5-gauss-N1": nf.CosNet(2, 1, mass=1.0, cutoff=3.0, alpha=0.5),
    "d3-a-1-const-N2": nf.CosNet(3, 2, mass=1.0, cutoff=3.0, alpha=-1.0, amplitude="constant"),
    "gaussmom-d1-const-N3": nf.CosNet.gaussian_kernel(
        1, 3, length=0.8, variance=1.2, amplitude="constant"
    ),
}


@pytest.mark.parametrize("name", list(SIX_CASES))
def test_six_point_large_signal(name):
    """N = 1-3 and nearby points: the 1/N^2 six-point function many errors from zero;
    the wrong amplitude law (c4, c6 = 3, 15 <-> 1, 1) and width 2N are rejected (the
    width only for constant amplitudes: Gaussian ones, E a^12 = 10395 (E a^2)^6, leave
    the six-point function ~8 errors from zero at 1.5e5 networks)."""
    net = SIX_CASES[name]
    X = points(net.dim, seed=50 + list(SIX_CASES).index(name), n=4, scale=0.5)
    sext = SEXTUPLES.clip(max=3)
    ens = nf.sample(
        net,
        X,
        150_000,
        seed=77,
        quadruples=QUADRUPLES.clip(max=3),
        sextuples=sext,
        observables=["two_point"],
    )
    six = ens.connected_six_point()
    exact = cosnet_six_point(net, X, sext)
    assert_agrees(six, exact, f"{name}: six-point")
    assert np.max(np.abs(exact / six.error)) > (6 if net.amplitude == "gaussian" else 15)
    other = "constant" if net.amplitude == "gaussian" else "gaussian"
    wrong = cosnet_six_point(dataclasses.replace(net, amplitude=other), X, sext)
    assert_rejects(six, wrong, f"{name}: six-point with {other} amplitudes")
    if net.amplitude == "constant":
        wrong_n = cosnet_six_point(dataclasses.replace(net, width=2 * net.width), X, sext)
        assert_rejects(six, wrong_n, f"{name}: six-point at width 2N")
    quads = QUADRUPLES.clip(max=3)
    assert_agrees(
        ens.connected_four_point(), cosnet_four_point(net, X, quads), f"{name}: quadruples"
    )


# --------------------------------------------------------------------------- distinct outputs
DISTINCT_CASES = {
    "d2-a0.5-gauss-N2": nf.CosNet(2, 2, mass=1.0, cutoff=4.0, alpha=0.5, n_out=2),
    "d1-a-1-const-N2": nf.CosNet(
        1, 2, mass=1.0, cutoff=4.0, alpha=-1.0, amplitude="constant", n_out=2
    ),
    "gaussmom-d3-gauss-N3": nf.CosNet.gaussian_kernel(3, 3, length=1.0, variance=1.0, n_out=2),
}


@pytest.mark.parametrize("name", list(DISTINCT_CASES))
def test_distinct_output_four_point(name):
    """n_out = 2: E[phi_k1 phi_k2 phi_l3 phi_l4] - G12 G34 for k != l, and the same-output
    function (averaged over both outputs) of the same ensemble; the same-output formula
    is rejected as the distinct-output one."""
    net = DISTINCT_CASES[name]
    X = points(net.dim, seed=90 + list(DISTINCT_CASES).index(name), n=4)
    ens = nf.sample(net, X, 80_000, seed=5, quadruples=QUADRUPLES.clip(max=3))
    distinct = ens.four_point(neurons="distinct")
    exact = cosnet_four_point(net, X, neurons="distinct")
    assert_agrees(distinct, exact, f"{name}: distinct outputs")
    assert np.max(np.abs(exact / distinct.error)) > 15
    same_exact = cosnet_four_point(net, X)
    assert_agrees(ens.four_point(), same_exact, f"{name}: same output")
    assert_agrees(
        ens.connected_four_point(),
        cosnet_four_point(net, X, QUADRUPLES.clip(max=3)),
        f"{name}: quadruples (same output)",
    )
    assert_rejects(distinct, same_exact, f"{name}: same-output formula for distinct outputs")
    wrong_n = cosnet_four_point(dataclasses.replace(net, width=2 * net.width), X, None, "distinct")
    assert_rejects(distinct, wrong_n, f"{name}: distinct outputs at width 2N")
    assert_agrees(ens.two_point(), cosnet_two_point(net, X), f"{name}: two-point")


# --------------------------------------------------------------------------- calibration
def test_zscores_are_standard_normal():
    """Over 100 independent small ensembles (seeds) of one net, the z-scores of one
    two-point and one four-point entry have mean ~ 0 and mean square ~ 1: the exact values
    are the means and the jackknife errors their spread. (Within one ensemble the entries
    are too correlated for such a check.)"""
    net = nf.CosNet(2, 2, mass=1.0, cutoff=4.0, alpha=0.5, amplitude="constant")
    X = points(2, seed=123, n=3)
    g_exact, f_exact = cosnet_two_point(net, X)[0, 1], cosnet_four_point(net, X)[0, 1, 2, 2]
    z = []
    for seed in range(100):
        ens = nf.sample(net, X, 3000, seed=10_000 + seed)
        g, f = ens.two_point(), ens.four_point()
        z.append(
            [
                (g.value[0, 1] - g_exact) / g.error[0, 1],
                (f.value[0, 1, 2, 2] - f_exact) / f.error[0, 1, 2, 2],
            ]
        )
    z = np.array(z)
    assert np.all(np.abs(z.mean(axis=0)) < 4.0 / math.sqrt(len(z))), z.mean(axis=0)
    msq = np.mean(z**2, axis=0)
    assert np.all((0.6 < msq) & (msq < 1.5)), msq
