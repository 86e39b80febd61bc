"""Exact cos-net correlators (nnft_fast.theory.cosnet) on their own, without the sampler:
the radial integrals against direct d-dimensional quadrature and closed forms, the
identities between G, H and H3, the symmetries of the four- and six-point functions, and
the four- and six-point formulas against a brute-force computation over one feature's
parameters (quadrature over (a, w, b) and a NumPy Monte Carlo), independent of the
package's sampler (docs/exact-results.md#cos-net-fields)."""

import dataclasses
import itertools
import math

import numpy as np
import pytest
from scipy import integrate, special

import nnft_fast as nf
from nnft_fast.cosnet import sphere_area
from nnft_fast.theory import (
    cosnet_four_point,
    cosnet_h,
    cosnet_h3,
    cosnet_propagator,
    cosnet_six_point,
    cosnet_two_point,
)
from nnft_fast.theory.cosnet import amplitude_moments, omega, radial_fourier
from nnft_fast.tuples import set_partitions

RTOL = 1e-10


def prop(dim, width=2, mass=1.0, cutoff=3.0, alpha=0.0, amplitude="gaussian", n_out=1):
    return nf.CosNet(dim, width, mass, cutoff, alpha, amplitude, n_out)


def ball_transform(dim, cutoff, r):
    """int_{|w|<Lambda} cos(w . r) d^d w in closed form (d = 1, 2, 3), r > 0."""
    s = cutoff * r
    if dim == 1:
        return 2.0 * np.sin(s) / r
    if dim == 2:
        return 2.0 * math.pi * cutoff * special.j1(s) / r
    return 4.0 * math.pi * (np.sin(s) - s * np.cos(s)) / r**3


# --------------------------------------------------------------------------- Omega_d
def test_omega_closed_forms():
    s = np.concatenate([[0.0, 1e-8, 1e-3], np.linspace(0.01, 40.0, 401)])
    np.testing.assert_allclose(omega(1, s), np.cos(s), rtol=0, atol=1e-15)
    np.testing.assert_allclose(omega(2, s), special.j0(s), rtol=0, atol=1e-15)
    with np.errstate(invalid="ignore", divide="ignore"):
        sinc = np.where(s > 0, np.sin(s) / s, 1.0)
        o4 = np.where(s > 0, 2.0 * special.j1(s) / s, 1.0)
        o5 = np.where(s > 0.05, 3 * (np.sin(s) - s * np.cos(s)) / s**3, 1 - s**2 / 10 + s**4 / 280)
    np.testing.assert_allclose(omega(3, s), sinc, rtol=0, atol=1e-15)
    np.testing.assert_allclose(omega(4, s), o4, rtol=0, atol=1e-13)  # series | jv
    np.testing.assert_allclose(omega(5, s), o5, rtol=0, atol=1e-11)
    for d in range(1, 9):
        assert omega(d, np.array([0.0]))[0] == 1.0
        # continuous across the series / Bessel switch at s = 1
        lo, hi = omega(d, np.array([1.0 - 1e-12, 1.0 + 1e-12]))
        assert abs(lo - hi) < 1e-11


# --------------------------------------------------------------------------- radial integral
@pytest.mark.parametrize("power", [1.0, 0.5, 2.0, -0.5])
def test_radial_integral_d1_direct(power):
    """d = 1: int_{-Lambda}^{Lambda} (w^2 + m^2)^-p cos(w r) dw, with QUADPACK's
    oscillatory rule (QAWO) over the whole line segment."""
    m, lam = 0.8, 5.0
    r = np.array([0.0, 0.37, 1.0, 2.5, 7.3])
    got = radial_fourier(1, power, m, lam, r)
    ref0 = integrate.quad(lambda w: (w * w + m * m) ** -power, -lam, lam, epsrel=1e-13)[0]
    assert got[0] == pytest.approx(ref0, rel=RTOL)
    for ri, gi in zip(r[1:], got[1:]):
        ref = integrate.quad(
            lambda w: (w * w + m * m) ** -power,
            -lam,
            lam,
            weight="cos",
            wvar=ri,
            epsabs=1e-12 * ref0,
            epsrel=1e-12,
            limit=200,
        )[0]
        assert gi == pytest.approx(ref, rel=RTOL, abs=RTOL * abs(got[0]))


@pytest.mark.parametrize("power", [1.0, 0.25])
def test_radial_integral_d2_direct(power):
    """d = 2: a Cartesian double integral over the disc at vectors r in several
    directions (isotropy included)."""
    m, lam = 1.1, 2.5
    for vec in ([0.0, 0.0], [0.9, 0.0], [0.6, -1.2], [-1.5, 0.4]):
        ref = integrate.dblquad(
            lambda y, x: (x * x + y * y + m * m) ** -power * math.cos(x * vec[0] + y * vec[1]),
            -lam,
            lam,
            lambda x: -math.sqrt(max(lam * lam - x * x, 0.0)),
            lambda x: math.sqrt(max(lam * lam - x * x, 0.0)),
            epsabs=1e-13,
            epsrel=1e-12,
        )[0]
        got = radial_fourier(2, power, m, lam, np.hypot(*vec))
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-11)


def test_radial_integral_d3_direct():
    """d = 3: (4 pi / r) int_0^Lambda k sin(k r) (k^2+m^2)^-p dk by QAWO."""
    m, lam, power = 0.6, 4.0, 0.75
    r = np.array([0.2, 1.0, 3.3])
    got = radial_fourier(3, power, m, lam, r)
    for ri, gi in zip(r, got):
        ref = integrate.quad(
            lambda k: k * (k * k + m * m) ** -power,
            0.0,
            lam,
            weight="sin",
            wvar=ri,
            epsabs=0,
            epsrel=1e-12,
        )[0]
        assert gi == pytest.approx(4 * math.pi * ref / ri, rel=RTOL)
    ref0 = integrate.quad(lambda k: k * k * (k * k + m * m) ** -power, 0, lam, epsrel=1e-14)[0]
    assert radial_fourier(3, power, m, lam, 0.0) == pytest.approx(4 * math.pi * ref0, rel=RTOL)


def test_radial_integral_shapes_and_validation():
    r = np.linspace(0, 2, 12).reshape(3, 4)
    out = radial_fourier(2, 1.0, 1.0, 3.0, r)
    assert out.shape == (3, 4)
    assert radial_fourier(2, 1.0, 1.0, 3.0, -r)[1, 2] == out[1, 2]  # only |r| matters
    assert radial_fourier(1, 1.0, 1.0, 3.0, np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError):
        radial_fourier(0, 1.0, 1.0, 3.0, r)
    with pytest.raises(TypeError):
        radial_fourier(1.5, 1.0, 1.0, 3.0, r)
    with pytest.raises(ValueError):
        radial_fourier(1, 1.0, -1.0, 3.0, r)
    with pytest.raises(ValueError):
        radial_fourier(1, 1.0, 1.0, 3.0, [np.nan])


# --------------------------------------------------------------------------- G closed forms
def test_propagator_at_zero_closed_forms():
    m, lam = 0.7, 6.0
    g0 = {
        1: math.atan(lam / m) / (math.pi * m),
        2: math.log1p((lam / m) ** 2) / (4 * math.pi),
        3: (lam - m * math.atan(lam / m)) / (2 * math.pi**2),
    }
    for d, value in g0.items():
        for alpha in (-1.0, 0.0, 0.5):  # G does not depend on alpha
            net = prop(d, mass=m, cutoff=lam, alpha=alpha)
            assert cosnet_propagator(net, 0.0) == pytest.approx(value, rel=1e-12)
    for d in (1, 2, 3, 4, 6):  # G(0) = Z_0 / (2 pi)^d in every dimension
        net = prop(d, mass=m, cutoff=lam)
        expected = net.normalisation / (2 * math.pi) ** d
        assert cosnet_propagator(net, 0.0) == pytest.approx(expected, rel=1e-11)


def test_propagator_independent_of_alpha():
    r = np.linspace(0.0, 4.0, 23)
    for d in (1, 2, 3):
        ref = cosnet_propagator(prop(d, alpha=0.0), r)
        for alpha in (-1.0, 0.5, 1.7):
            np.testing.assert_allclose(
                cosnet_propagator(prop(d, alpha=alpha), r), ref, rtol=0, atol=1e-13
            )


def test_propagator_large_cutoff_d1():
    """G(r) -> exp(-m |r|) / (2m); the tail int_Lambda^oo cos(k r) / (k^2+m^2) dk is bounded
    by 2 / (r (Lambda^2 + m^2)) (one integration by parts), exact at r = 0."""
    m, lam = 1.3, 400.0
    net = prop(1, mass=m, cutoff=lam)
    r = np.array([0.5, 1.0, 2.0, 3.0])
    bound = 2.0 / (math.pi * r * (lam**2 + m**2))
    err = np.abs(cosnet_propagator(net, r) - np.exp(-m * r) / (2 * m))
    assert np.all(err <= bound + 1e-13), (err, bound)
    tail0 = (math.pi / 2 - math.atan(lam / m)) / (math.pi * m)
    assert cosnet_propagator(net, 0.0) == pytest.approx(1 / (2 * m) - tail0, rel=1e-12)


def test_propagator_large_cutoff_d3():
    """G(r) -> exp(-m r) / (4 pi r); tail bound (1 / (2 pi^2 r)) 2 Lambda / ((Lambda^2+m^2) r)."""
    m, lam = 0.9, 3000.0
    net = prop(3, mass=m, cutoff=lam)
    r = np.array([0.5, 1.0, 2.0, 3.0])
    exact = np.exp(-m * r) / (4 * math.pi * r)
    bound = 2 * lam / ((lam**2 + m**2) * r) / (2 * math.pi**2 * r)
    err = np.abs(cosnet_propagator(net, r) - exact)
    assert np.all(err <= bound + 1e-12), (err, bound)
    assert np.all(bound < 5e-3 * exact)  # the comparison resolves the closed form


def test_propagator_large_cutoff_d2():
    """G(r) -> K_0(m r) / (2 pi); the tail is ~ Lambda^-1 |J_1(Lambda r)| / r (asymptotic
    estimate, taken three times as the tolerance)."""
    m, lam = 1.0, 3000.0
    net = prop(2, mass=m, cutoff=lam)
    r = np.array([0.5, 1.0, 2.0])
    exact = special.k0(m * r) / (2 * math.pi)
    tail = 3 * np.sqrt(2 / (math.pi * lam * r)) / (lam * r) / (2 * math.pi)
    err = np.abs(cosnet_propagator(net, r) - exact)
    assert np.all(err <= tail), (err, tail)
    assert np.all(tail < 1e-3 * exact)


def test_gaussian_momenta_closed_forms():
    r = np.linspace(0.0, 3.0, 13)
    for d in (1, 2, 3):
        net = nf.CosNet.gaussian_kernel(d, 3, length=0.7, variance=1.8)
        e = np.exp(-(r**2) / (2 * 0.7**2))
        np.testing.assert_allclose(cosnet_propagator(net, r), 1.8 * e, rtol=1e-14)
        np.testing.assert_allclose(cosnet_h(net, r), 1.8**2 * e, rtol=1e-14)
        np.testing.assert_allclose(cosnet_h3(net, r), 1.8**3 * e, rtol=1e-14)


# --------------------------------------------------------------------------- H and H3
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_h_identities(dim):
    """alpha = 0: H = Z_0 G / (2 pi)^d and H3 = Z_0^2 G / (2 pi)^(2d); alpha = 1: H is the
    ball's transform times Z_1 / (2 pi)^(2d); alpha = 1/2: so is H3 with Z^2 / (2 pi)^(3d);
    alpha = -1: Z = |ball| and H(0) = |ball| int P^2 / (2 pi)^(2d)."""
    m, lam = 0.9, 4.0
    r = np.array([0.0, 0.3, 1.1, 2.4, 5.0])
    tp = (2 * math.pi) ** dim
    net0 = prop(dim, mass=m, cutoff=lam)
    g = cosnet_propagator(net0, r)
    z0 = net0.normalisation
    np.testing.assert_allclose(cosnet_h(net0, r), z0 / tp * g, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(cosnet_h3(net0, r), z0**2 / tp**2 * g, rtol=1e-12, atol=1e-14)
    rp = r[1:]
    net1 = prop(dim, mass=m, cutoff=lam, alpha=1.0)
    ball = ball_transform(dim, lam, rp)
    np.testing.assert_allclose(
        cosnet_h(net1, rp), net1.normalisation / tp**2 * ball, rtol=1e-11, atol=1e-14
    )
    net_half = prop(dim, mass=m, cutoff=lam, alpha=0.5)
    np.testing.assert_allclose(
        cosnet_h3(net_half, rp),
        net_half.normalisation**2 / tp**3 * ball,
        rtol=1e-11,
        atol=1e-14,
    )
    net_m1 = prop(dim, mass=m, cutoff=lam, alpha=-1.0)
    volume = math.pi ** (dim / 2) / math.gamma(dim / 2 + 1) * lam**dim
    assert net_m1.normalisation == pytest.approx(volume, rel=1e-13)
    p2 = integrate.quad(lambda k: k ** (dim - 1) / (k * k + m * m) ** 2, 0, lam, epsrel=1e-14)
    h0 = volume * sphere_area(dim) * p2[0] / tp**2
    assert cosnet_h(net_m1, 0.0) == pytest.approx(h0, rel=1e-12)
    # cos <= 1 under a positive measure
    for net in (net0, net1, net_half, net_m1):
        h = cosnet_h(net, np.linspace(0, 6, 61))
        assert np.all(np.abs(h) <= h[0] * (1 + 1e-12))


# --------------------------------------------------------------------------- symmetries
def _points(dim, n, seed):
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, dim))


@pytest.mark.parametrize(
    "net",
    [
        prop(2, width=3, alpha=0.5),
        prop(3, width=2, alpha=-1.0, amplitude="constant"),
        nf.CosNet.gaussian_kernel(1, 4, length=0.6, variance=2.0),
    ],
    ids=["d2-a0.5", "d3-a-1-const", "gauss-d1"],
)
def test_four_point_symmetries(net):
    X = _points(net.dim, 5, 1)
    f = cosnet_four_point(net, X)
    assert f.shape == (5, 5, 5, 5)
    for perm in itertools.permutations(range(4)):
        np.testing.assert_allclose(np.transpose(f, perm), f, rtol=1e-14, atol=1e-15)
    # translations, rotations / reflections, and 1 / N
    shift = X + np.arange(1, net.dim + 1) * 0.37
    np.testing.assert_allclose(cosnet_four_point(net, shift), f, rtol=1e-12, atol=1e-15)
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(net.dim, net.dim)))
    np.testing.assert_allclose(cosnet_four_point(net, X @ q.T), f, rtol=1e-9, atol=1e-12)
    wide = dataclasses.replace(net, width=5 * net.width)
    np.testing.assert_allclose(cosnet_four_point(wide, X), f / 5, rtol=1e-14)
    # the sampled-quadruple form agrees with the tensor, repeated points included
    quads = np.random.default_rng(3).integers(0, 5, size=(40, 4))
    quads[0] = [2, 2, 2, 2]
    np.testing.assert_allclose(
        cosnet_four_point(net, X, quads), f[tuple(quads.T)], rtol=1e-13, atol=1e-16
    )
    # the two-point function is the propagator of the separations, symmetric
    g = cosnet_two_point(net, X)
    np.testing.assert_allclose(g, g.T, rtol=0, atol=0)
    np.testing.assert_allclose(
        g[1, 3], cosnet_propagator(net, np.linalg.norm(X[1] - X[3])), rtol=1e-12
    )


def test_four_point_distinct_symmetries():
    net = prop(2, width=3, alpha=0.5, n_out=2)
    X = _points(2, 4, 4)
    f = cosnet_four_point(net, X, neurons="distinct")
    for perm in [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)]:
        np.testing.assert_allclose(np.transpose(f, perm), f, rtol=0, atol=1e-15)
    assert np.max(np.abs(np.transpose(f, (0, 2, 1, 3)) - f)) > 1e-4  # not fully symmetric
    # the amplitude law does not enter: same for constant amplitudes
    const = dataclasses.replace(net, amplitude="constant")
    np.testing.assert_allclose(cosnet_four_point(const, X, neurons="distinct"), f, rtol=1e-15)
    # (1/2) sum_3 H = N (same + Wick) / c4, and distinct = (1/N)[(1/2) sum H - G12 G34]
    same, g = cosnet_four_point(net, X), cosnet_two_point(net, X)
    g12g34 = np.einsum("ab,cd->abcd", g, g)
    wick = g12g34 + np.einsum("ac,bd->abcd", g, g) + np.einsum("ad,bc->abcd", g, g)
    half_sum_h = (net.width * same + wick) / 3.0
    np.testing.assert_allclose(f, (half_sum_h - g12g34) / net.width, rtol=1e-12, atol=1e-15)
    quads = np.array([[0, 1, 2, 3], [1, 1, 3, 0], [2, 0, 2, 0]])
    np.testing.assert_allclose(
        cosnet_four_point(net, X, quads, neurons="distinct"), f[tuple(quads.T)], rtol=1e-13
    )


def test_six_point_symmetries():
    net = prop(2, width=2, alpha=0.5, amplitude="constant")
    X = _points(2, 6, 5)
    rng = np.random.default_rng(6)
    base = np.array([[0, 1, 2, 3, 4, 5], [0, 0, 1, 2, 3, 3], [4, 4, 4, 4, 4, 4]])
    ref = cosnet_six_point(net, X, base)
    for _ in range(10):
        perm = rng.permutation(6)
        np.testing.assert_allclose(cosnet_six_point(net, X, base[:, perm]), ref, rtol=1e-12)
    np.testing.assert_allclose(cosnet_six_point(net, X + 0.4, base), ref, rtol=1e-11)
    wide = dataclasses.replace(net, width=6)
    np.testing.assert_allclose(cosnet_six_point(wide, X, base), ref / 9, rtol=1e-14)
    assert cosnet_six_point(net, X, base[0]).shape == (1,)


# --------------------------------------------------------------------------- brute force
def _momentum_rule(net, n_k=160, n_theta=96):
    """Nodes (n, d) and probability weights (n,) of a quadrature for w ~ rho on the disc /
    segment (d = 1, 2), or for Gaussian momenta (d = 1), built without the package's
    normalisation: Z is integrated here. Also A(|w|) at the nodes."""
    if net.momenta == "gaussian":
        x, w = np.polynomial.hermite_e.hermegauss(120)
        w = w / w.sum()
        return x[:, None] / net.length, w, np.full(x.size, net.variance)
    lam, m = net.cutoff, net.mass
    edges = np.linspace(0.0, lam, n_k // 16 + 1)
    x, w = special.roots_legendre(16)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    k = (mid[:, None] + half[:, None] * x).ravel()
    wk = (half[:, None] * w).ravel()
    if net.dim == 1:
        nodes = np.concatenate([k, -k])[:, None]
        measure = np.concatenate([wk, wk])
    else:
        theta = 2 * math.pi * np.arange(n_theta) / n_theta
        nodes = (k[:, None, None] * np.stack([np.cos(theta), np.sin(theta)], -1)).reshape(-1, 2)
        measure = (k[:, None] * wk[:, None] * np.full(n_theta, 2 * math.pi / n_theta)).ravel()
    kk = np.linalg.norm(nodes, axis=1)
    p = 1.0 / (kk * kk + m * m)
    density = measure * p ** (1 + net.alpha)
    z = density.sum()
    amp = z * p ** (-net.alpha) / (2 * math.pi) ** net.dim
    return nodes, density / z, amp


def _feature_moments(net, X):
    """moment(S, outputs) = E[prod_{j in S} t_{o_j}(x_j)] for one feature t_o = a_o cos(w.x+b)
    of ``net`` (width N: E a^2 = 2 A / N), by quadrature: w by ``_momentum_rule``, b by the
    trapezoid rule (exact on these trigonometric polynomials), a exactly: E[a^n] from the
    law (Gaussian: (n-1)!! s^n; constant: s^n, n even; odd: 0), outputs independent."""
    nodes, weights, amp = _momentum_rule(net)
    n_b = 32
    b = 2 * math.pi * (np.arange(n_b) + 0.5) / n_b - math.pi
    cosines = np.cos((nodes @ X.T)[:, :, None] + b[None, None, :])  # (n_w, B, n_b)
    s2 = 2.0 * amp / net.width

    def a_moment(n):
        if n % 2:
            return np.zeros_like(s2)
        factor = math.prod(range(n - 1, 0, -2)) if net.amplitude == "gaussian" else 1.0
        return factor * s2 ** (n // 2)

    cache = {}

    def moment(points, outputs=None):
        outputs = (0,) * len(points) if outputs is None else tuple(outputs)
        key = tuple(sorted(zip(points, outputs)))
        if key not in cache:
            weight = weights.copy()
            for o in set(outputs):
                weight = weight * a_moment(outputs.count(o))
            prod = np.prod(cosines[:, list(points), :], axis=1).mean(axis=1)
            cache[key] = float(weight @ prod)
        return cache[key]

    return moment


def _cumulant(moment, points):
    """The joint cumulant of t(x_p), p in points, from all moments (every set partition,
    odd blocks and singletons included: Bell(6) = 203 terms for six points)."""
    total = 0.0
    for part in set_partitions(list(points)):
        weight = (-1) ** (len(part) - 1) * math.factorial(len(part) - 1)
        total += weight * math.prod(moment(block) for block in part)
    return total


BRUTE_NETS = [
    prop(1, width=1, mass=0.8, cutoff=3.0, alpha=0.0),
    prop(1, width=3, mass=0.8, cutoff=3.0, alpha=0.5, amplitude="constant"),
    prop(2, width=1, mass=1.2, cutoff=2.5, alpha=-1.0, amplitude="constant"),
    prop(2, width=2, mass=1.2, cutoff=2.5, alpha=0.5),
    nf.CosNet.gaussian_kernel(1, 2, length=0.8, variance=1.4),
]
BRUTE_IDS = ["d1-a0-N1", "d1-a0.5-const-N3", "d2-a-1-const-N1", "d2-a0.5-N2", "gauss-d1-N2"]


@pytest.mark.parametrize("net", BRUTE_NETS, ids=BRUTE_IDS)
def test_correlators_vs_brute_force(net):
    """phi is a sum of N iid features, so its cumulants are N times a feature's: the
    two-, four- and six-point formulas against cumulants of quadrature moments."""
    X = _points(net.dim, 4, 7) * 0.8
    moment = _feature_moments(net, X)
    assert sum(1 for _ in set_partitions(list(range(6)))) == 203
    g = cosnet_two_point(net, X)
    for a, b in [(0, 0), (0, 2), (1, 3)]:
        assert g[a, b] == pytest.approx(net.width * moment([a, b]), rel=1e-10)
    quads = [(0, 1, 2, 3), (0, 0, 1, 1), (2, 2, 2, 2), (0, 1, 1, 3)]
    got4 = cosnet_four_point(net, X, np.array(quads))
    for value, quad in zip(got4, quads):
        assert value == pytest.approx(net.width * _cumulant(moment, quad), rel=1e-9, abs=1e-13)
    sexts = [(0, 1, 2, 3, 0, 1), (0, 0, 0, 0, 0, 0), (0, 1, 2, 3, 3, 2), (0, 0, 1, 1, 2, 3)]
    got6 = cosnet_six_point(net, X, np.array(sexts))
    for value, sext in zip(got6, sexts):
        exact = net.width * _cumulant(moment, sext)
        assert value == pytest.approx(exact, rel=1e-9, abs=1e-13)


@pytest.mark.parametrize("net", BRUTE_NETS[1:4], ids=BRUTE_IDS[1:4])
def test_distinct_outputs_vs_brute_force(net):
    """Outputs k != l share (w, b), independent amplitudes: E[phi_k1 phi_k2 phi_l3 phi_l4]
    - G12 G34 is N times the joint cumulant of one feature's (t_k, t_k, t_l, t_l) (the
    cross-output two-point functions vanish)."""
    net = dataclasses.replace(net, n_out=2)
    X = _points(net.dim, 4, 8) * 0.8
    moment = _feature_moments(net, X)
    quads = [(0, 1, 2, 3), (0, 0, 1, 1), (2, 2, 2, 2), (1, 3, 0, 1)]
    got = cosnet_four_point(net, X, np.array(quads), neurons="distinct")
    for value, (a, b, c, d) in zip(got, quads):
        joint = moment([a, b, c, d], [0, 0, 1, 1]) - moment([a, b]) * moment([c, d])
        assert value == pytest.approx(net.width * joint, rel=1e-9, abs=1e-13)


def test_six_point_monte_carlo_d3():
    """d = 3, alpha = 1/2, N = 1: the moments of one feature from 4e5 parameter draws by
    NumPy (w by rejection from the ball, b uniform, constant amplitudes): the four- and
    six-point cumulants within 4.5 standard errors (batch means over 20 batches)."""
    net = prop(3, width=1, mass=1.0, cutoff=2.5, alpha=0.5, amplitude="constant")
    X = _points(3, 4, 9) * 0.6
    rng = np.random.default_rng(11)
    n_draw, keep = 1_600_000, []
    while sum(len(k) for k in keep) < 400_000:
        radius = net.cutoff * rng.random(n_draw) ** (1 / 3)
        accept = rng.random(n_draw) < (1.0 / (1.0 + radius**2)) ** 1.5  # (P / P(0))^(1+a)
        direction = rng.normal(size=(n_draw, 3))
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        keep.append(radius[accept, None] * direction[accept])
    w = np.concatenate(keep)[:400_000]
    b = rng.uniform(-math.pi, math.pi, len(w))
    amp = np.sqrt(2.0 * net.amplitude_variance(np.linalg.norm(w, axis=1)))  # N = 1
    t = amp[:, None] * np.cos(w @ X.T + b[:, None])  # (n, B): the field at N = 1
    sext, quad = (0, 1, 2, 3, 0, 1), (0, 1, 2, 3)
    batches = []
    for part in np.array_split(t, 20):

        def moment(points, part=part):
            return float(np.mean(np.prod(part[:, list(points)], axis=1)))

        batches.append([_cumulant(moment, quad), _cumulant(moment, sext)])
    batches = np.array(batches)
    mean, err = batches.mean(0), batches.std(0, ddof=1) / math.sqrt(len(batches))
    exact = [cosnet_four_point(net, X, [quad])[0], cosnet_six_point(net, X, [sext])[0]]
    z = (mean - exact) / err
    assert np.all(np.abs(z) < 4.5), (mean, exact, err)
    assert np.all(np.abs(np.asarray(exact) / err) > 10)  # the signal is resolved


# --------------------------------------------------------------------------- validation
def test_input_validation():
    net = prop(2, n_out=1)
    X = _points(2, 3, 0)
    with pytest.raises(TypeError, match="CosNet"):
        cosnet_two_point("net", X)
    with pytest.raises(ValueError, match="dim"):
        cosnet_two_point(net, _points(3, 3, 0))
    with pytest.raises(ValueError):
        cosnet_two_point(net, np.zeros(4))  # one point in R^4
    with pytest.raises(ValueError, match="shape"):
        cosnet_two_point(net, np.zeros((2, 2, 2)))
    # points as nf.sample takes them: 1-D X is one point (d > 1)
    np.testing.assert_array_equal(
        cosnet_two_point(net, [0.1, 0.2]), cosnet_two_point(net, [[0.1, 0.2]])
    )
    with pytest.raises(ValueError, match="finite"):
        cosnet_two_point(net, np.array([[0.0, np.inf]]))
    with pytest.raises(TypeError):
        cosnet_two_point(net, [["a", "b"]])
    with pytest.raises(ValueError, match="neurons"):
        cosnet_four_point(net, X, neurons="other")
    with pytest.raises(ValueError, match="n_out"):
        cosnet_four_point(net, X, neurons="distinct")
    with pytest.raises(ValueError, match="shape"):
        cosnet_four_point(net, X, quadruples=[[0, 1, 2]])
    with pytest.raises(ValueError, match="outside"):
        cosnet_four_point(net, X, quadruples=[[0, 1, 2, 3]])
    with pytest.raises(TypeError):
        cosnet_four_point(net, X, quadruples=[[0.0, 1.0, 2.0, 0.0]])
    with pytest.raises(ValueError, match="shape"):
        cosnet_six_point(net, X, [[0, 1, 2, 0]])
    with pytest.raises(ValueError, match="outside"):
        cosnet_six_point(net, X, [[0, 1, 2, 0, 1, -1]])
    with pytest.raises(TypeError, match="CosNet"):
        cosnet_h(object(), 1.0)
    with pytest.raises(ValueError, match="finite"):
        cosnet_propagator(net, [np.nan])
    assert amplitude_moments(net) == (3.0, 15.0)
    assert amplitude_moments(dataclasses.replace(net, amplitude="constant")) == (1.0, 1.0)


def test_full_four_point_fast_for_sixteen_points():
    """B = 16: the full tensor needs only the H of distinct pair-sum differences; it is
    computed once per call (checked by size, not by timing: ~10^4 radial integrals)."""
    net = prop(3, width=4, alpha=0.5, cutoff=5.0)
    X = _points(3, 16, 12)
    f = cosnet_four_point(net, X)
    assert f.shape == (16,) * 4 and np.all(np.isfinite(f))
    sample = np.random.default_rng(13).integers(0, 16, size=(30, 4))
    np.testing.assert_allclose(
        f[tuple(sample.T)], cosnet_four_point(net, X, sample), rtol=1e-12, atol=1e-16
    )
