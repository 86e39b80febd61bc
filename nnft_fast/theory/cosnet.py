"""Exact correlators of cos-net fields (``nnft_fast.CosNet``), at every finite width N
(docs/exact-results.md#cos-net-fields).

One network is phi(x) = sum_{i=1..N} t_i(x), t_i(x) = a_i cos(w_i . x + b_i), a sum of N
iid terms, with b ~ U(-pi, pi), w ~ rho_alpha and E[a^2 | w] = (2 / N) A_alpha(|w|)
(``nnft_fast.cosnet``). Averaging over the phase b, a product of n cosines keeps only the
sign patterns s in {+-1}^n with sum(s) = 0:

    E_b prod_{j=1..n} cos(theta_j + b) = 2^(1-n) sum_{s: sum s = 0, s_1 = +1} cos(s . theta),

so every odd moment of t vanishes and, with c4 = E a^4 / (E a^2)^2 and
c6 = E a^6 / (E a^2)^3 (3 and 15 for "gaussian" amplitudes, 1 and 1 for "constant"),

    m2(12)     = E t(x1) t(x2)      = G(x1 - x2) / N,
    m4(1234)   = (c4 / (2 N^2)) sum_{3 patterns} H(x1 + s2 x2 + s3 x3 + s4 x4),
    m6(1..6)   = (c6 / (4 N^3)) sum_{10 patterns} H3(x1 + s2 x2 + ... + s6 x6),

(patterns: sign vectors with s1 = +1 and as many + as -), where, isotropic functions of
the vector r,

    G(r)  = E_rho[A cos(w . r)]   = int_{|p|<Lambda} d^d p / (2 pi)^d cos(p . r) / (p^2 + m^2),
    H(r)  = E_rho[A^2 cos(w . r)] = Z_alpha / (2 pi)^(2d) int_{|w|<Lambda} P^(1-alpha) cos(w.r),
    H3(r) = E_rho[A^3 cos(w . r)] = Z_alpha^2 / (2 pi)^(3d) int_{|w|<Lambda} P^(1-2alpha) cos(w.r),

Z_alpha = int_{|w|<Lambda} P^(1+alpha) d^d w (``CosNet.normalisation``). For the
Gaussian-momentum family (w ~ N(0, I / length^2), E[a^2 | w] = 2 variance / N):
G = variance e, H = variance^2 e, H3 = variance^3 e with e = exp(-|r|^2 / (2 length^2)).

Cumulants of a sum of N iid terms are N times those of one term, hence exactly:

    G2(x1, x2) = G(x1 - x2)                                                 (every N, alpha),
    G4c        = (1/N) [(c4/2) sum_3 H(...) - (G12 G34 + G13 G24 + G14 G23)],
    G4 distinct outputs k != l, E[phi_k1 phi_k2 phi_l3 phi_l4] - G12 G34
               = (1/N) [(1/2) sum_3 H(...) - G12 G34]            (any amplitude law),
    G6c        = (1/N^2) [(c6/4) sum_10 H3(...) - sum_15 G_ij (c4/2) sum_3 H(rest)
                          + 2 sum_15 G G G],

the six-point function being N kappa6(t), kappa6(t) = m6 - sum_15 m2 m4 + 2 sum_15 m2 m2 m2
(the 10 m3 m3 terms vanish).

Radial integrals: for an isotropic f,

    int_{|w|<Lambda} f(|w|) cos(w . r) d^d w = S_{d-1} int_0^Lambda f(k) k^(d-1) Omega_d(k |r|) dk,

S_{d-1} = 2 pi^(d/2) / Gamma(d/2), Omega_d(s) = Gamma(d/2) (2/s)^(d/2-1) J_{d/2-1}(s)
(Omega_1 = cos, Omega_3(s) = sin(s) / s, Omega_d(0) = 1). They are computed by
Gauss-Legendre rules on panels short against both the oscillation (2 pi / |r|) and the
distance to the poles of P at k = +-i m (relative accuracy ~1e-13), once per distinct
|r| (rounded to ``R_DECIMALS`` decimals) of a call.
"""

import math

import numpy as np
from scipy import special

from ..cosnet import CosNet, _positive_int, _real, sphere_area
from ..field_run import validate_points
from ..tuples import check_tuples

R_DECIMALS = 12  # |r| equal to this many decimals share one radial integral
GL_NODES = 24  # Gauss-Legendre nodes per panel of the radial quadrature
_SERIES_BELOW = 1.0  # Omega_d by its power series below this argument (generic d)
_SERIES_TERMS = 24
_CHUNK = 1 << 22  # entries of one (radii x nodes) block of the quadrature
AMPLITUDE_MOMENTS = {"gaussian": (3.0, 15.0), "constant": (1.0, 1.0)}  # (c4, c6)
NEURONS = ("same", "distinct")


# --------------------------------------------------------------------------- radial part
def omega(dim, s):
    """Omega_d(s) = Gamma(d/2) (2/s)^(d/2 - 1) J_{d/2 - 1}(s): the angular average of
    cos(w . r) over the sphere |w| = k at s = k |r| (Omega_d(0) = 1)."""
    s = np.abs(np.asarray(s, dtype=np.float64))
    if dim == 1:
        return np.cos(s)
    if dim == 2:
        return special.j0(s)
    if dim == 3:
        return np.sinc(s / math.pi)
    nu = dim / 2.0 - 1.0
    out = np.empty_like(s)
    small = s < _SERIES_BELOW
    # 0F1(; nu + 1; -s^2 / 4) = sum_j (-s^2/4)^j / (j! (nu + 1)_j)
    z = -0.25 * s[small] ** 2
    term = np.ones_like(z)
    total = np.ones_like(z)
    for j in range(1, _SERIES_TERMS):
        term = term * z / (j * (nu + j))
        total = total + term
    out[small] = total
    big = s[~small]
    out[~small] = math.gamma(nu + 1.0) * (2.0 / big) ** nu * special.jv(nu, big)
    return out


def _panels(mass, cutoff, r_max):
    """Panel edges on [0, Lambda]: each at most the distance to the poles +-i m of P
    (sqrt(k^2 + m^2) at its left end) and at most one period 2 pi / r_max."""
    h_osc = 2.0 * math.pi / r_max if r_max > 0 else math.inf
    edges = [0.0]
    k = 0.0
    while k < cutoff:
        h = min(math.hypot(k, mass), h_osc, cutoff - k)
        k = cutoff if cutoff - k - h <= 1e-12 * cutoff else k + h
        edges.append(k)
    return np.asarray(edges)


def radial_fourier(dim, power, mass, cutoff, r):
    """I(r) = int_{|w|<Lambda} (|w|^2 + m^2)^(-power) cos(w . r) d^d w, for the separations
    r (any shape; only |r| matters), as S_{d-1} int_0^Lambda (k^2+m^2)^-power k^(d-1)
    Omega_d(k r) dk.

    Each distinct |r| (to ``R_DECIMALS`` decimals) is integrated once, by ``GL_NODES``-point
    Gauss-Legendre rules on panels no longer than one oscillation period nor than the
    distance to the poles of the integrand (geometric convergence: ~1e-13 relative to I(0)).
    """
    dim = _positive_int("dim", dim)
    mass = _real("mass", mass, True)
    cutoff = _real("cutoff", cutoff, True)
    power = _real("power", power, False)
    r = np.abs(np.asarray(r, dtype=np.float64))
    if not np.all(np.isfinite(r)):
        raise ValueError("separations r must be finite")
    if r.size == 0:
        return np.zeros(r.shape)
    keys, inverse = np.unique(np.round(r, R_DECIMALS), return_inverse=True)
    values = np.empty(keys.size)
    # radii in octaves above 2 pi / Lambda share one panel set, sized by their largest
    octave = np.floor(np.log2(np.maximum(keys * cutoff / (2.0 * math.pi), 1.0)))
    bounds = np.flatnonzero(np.diff(octave)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, keys.size]):
        values[lo:hi] = _radial_sums(dim, power, mass, cutoff, keys[lo:hi])
    return (sphere_area(dim) * values)[inverse.reshape(r.shape)]


def _radial_sums(dim, power, mass, cutoff, keys):
    """int_0^Lambda (k^2+m^2)^-power k^(d-1) Omega_d(k r) dk at the sorted radii ``keys``."""
    edges = _panels(mass, cutoff, float(keys[-1]))
    x, w = special.roots_legendre(GL_NODES)
    mid, half = 0.5 * (edges[1:] + edges[:-1]), 0.5 * (edges[1:] - edges[:-1])
    k = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    weight = (half[:, None] * w[None, :]).ravel()
    weight = weight * k ** (dim - 1) * (k * k + mass * mass) ** (-power)
    values = np.empty(keys.size)
    step = max(1, _CHUNK // k.size)
    for start in range(0, keys.size, step):
        block = keys[start : start + step]
        values[start : start + step] = omega(dim, block[:, None] * k[None, :]) @ weight
    return values


# --------------------------------------------------------------------------- G, H, H3
def _check_net(net):
    if not isinstance(net, CosNet):
        raise TypeError(f"net must be an nnft_fast.CosNet, got {type(net).__name__}")
    return net


def _radius(r):
    try:
        r = np.asarray(r, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("r must be an array of real separations") from None
    if not np.all(np.isfinite(r)):
        raise ValueError("separations r must be finite")
    return np.abs(r)


def _moment_function(net, order, r):
    """E_rho[A^order cos(w . r)] (order 1: G, 2: H, 3: H3) at |r|."""
    net = _check_net(net)
    r = _radius(r)
    if net.momenta == "gaussian":
        return net.variance**order * np.exp(-0.5 * (r / net.length) ** 2)
    z, d = net.normalisation, net.dim
    prefactor = z ** (order - 1) / (2.0 * math.pi) ** (order * d)
    power = 1.0 - (order - 1) * net.alpha  # P^(1 + alpha) A^order ~ P^(1 - (order-1) alpha)
    return prefactor * radial_fourier(d, power, net.mass, net.cutoff, r)


def cosnet_propagator(net, r):
    """The two-point function G(r) of ``net`` at the separations |r| (any shape), exact at
    every width N and for every alpha:

        G(r) = int_{|p|<Lambda} d^d p / (2 pi)^d cos(p . r) / (p^2 + m^2)
             = S_{d-1} / (2 pi)^d int_0^Lambda k^(d-1) Omega_d(k r) / (k^2 + m^2) dk,

    G(0) = Z_0 / (2 pi)^d; Gaussian momenta: variance exp(-r^2 / (2 length^2))."""
    return _moment_function(net, 1, r)


def cosnet_h(net, r):
    """H(r) = E_rho[A_alpha^2 cos(w . r)] = Z_alpha / (2 pi)^(2d) int_{|w|<Lambda}
    P^(1 - alpha) cos(w . r) d^d w at |r| (any shape): the four-point kernel,
    m4 = (c4 / (2 N^2)) sum_3 H. At alpha = 0, H = Z_0 / (2 pi)^d G; Gaussian momenta:
    variance^2 exp(-r^2 / (2 length^2))."""
    return _moment_function(net, 2, r)


def cosnet_h3(net, r):
    """H3(r) = E_rho[A_alpha^3 cos(w . r)] = Z_alpha^2 / (2 pi)^(3d) int_{|w|<Lambda}
    P^(1 - 2 alpha) cos(w . r) d^d w at |r| (any shape): the six-point kernel,
    m6 = (c6 / (4 N^3)) sum_10 H3. Gaussian momenta: variance^3 exp(-r^2 / (2 length^2))."""
    return _moment_function(net, 3, r)


def amplitude_moments(net):
    """(c4, c6) = (E a^4 / (E a^2)^2, E a^6 / (E a^2)^3) given w: (3, 15) for "gaussian"
    amplitudes, (1, 1) for "constant"."""
    return AMPLITUDE_MOMENTS[_check_net(net).amplitude]


# --------------------------------------------------------------------------- correlators
def _norms(vectors):
    return np.sqrt(np.einsum("...i,...i->...", vectors, vectors))


def cosnet_two_point(net, X):
    """G2_ab = E[phi(x_a) phi(x_b)] = G(|x_a - x_b|) on the points X (B, d): (B, B),
    exact at every width (``cosnet_propagator``). X is checked as by ``nf.sample``
    (``field_run.validate_points``: real, finite, d = net.dim; 1-D X is one point)."""
    net = _check_net(net)
    X = validate_points(net, X)
    return cosnet_propagator(net, _norms(X[:, None, :] - X[None, :, :]))


# The three pairings {ab}{cd} of a quadruple, and the patterns x_a + x_b - x_c - x_d.
_PAIRINGS4 = ((0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2))


def _check_neurons(net, neurons):
    if not isinstance(neurons, str) or neurons not in NEURONS:
        raise ValueError(f"neurons must be one of {NEURONS}, got {neurons!r}")
    if neurons == "distinct" and net.n_out < 2:
        raise ValueError(
            f'neurons="distinct" needs a net with n_out >= 2 outputs, got n_out = {net.n_out}'
        )


def cosnet_four_point(net, X, quadruples=None, neurons="same"):
    """The connected four-point function of the field, exact at finite width N.

    neurons="same" (one output):

        G4c = (1/N) [(c4/2) (H(x1+x2-x3-x4) + H(x1-x2+x3-x4) + H(x1-x2-x3+x4))
                     - G12 G34 - G13 G24 - G14 G23],

    neurons="distinct" (outputs k != l sharing w and b; n_out >= 2):
    E[phi_k(x1) phi_k(x2) phi_l(x3) phi_l(x4)] - G12 G34
        = (1/N) [(1/2) (the same three H) - G12 G34],

    with c4 = E a^4 / (E a^2)^2 (``amplitude_moments``), G = ``cosnet_propagator`` and
    H = ``cosnet_h``.

    Returns the (B, B, B, B) tensor over all index quadruples of the points X (B, d), or,
    given ``quadruples`` (T, 4) of point indices, its (T,) entries there (as sampled with
    ``nf.sample(..., quadruples=)``).
    """
    net = _check_net(net)
    X = validate_points(net, X)
    _check_neurons(net, neurons)
    c4 = amplitude_moments(net)[0] if neurons == "same" else 1.0
    n = X.shape[0]
    g = cosnet_two_point(net, X)
    if quadruples is None:
        a, b = np.triu_indices(n)
        sums = X[a] + X[b]  # x_a + x_b over the compact pairs a <= b
        index = np.zeros((n, n), np.int64)
        index[a, b] = index[b, a] = np.arange(a.size)
        h_pairs = cosnet_h(net, _norms(sums[:, None, :] - sums[None, :, :]))
        hq = h_pairs[index[:, :, None, None], index[None, None, :, :]]  # H(xa+xb-xc-xd)
        sum_h = hq + np.einsum("acbd->abcd", hq) + np.einsum("adbc->abcd", hq)
        g12g34 = g[:, :, None, None] * g[None, None, :, :]
        if neurons == "distinct":
            return (0.5 * sum_h - g12g34) / net.width
        wick = g12g34 + np.einsum("acbd->abcd", g12g34) + np.einsum("adbc->abcd", g12g34)
        return (0.5 * c4 * sum_h - wick) / net.width
    q = check_tuples("quadruples", quadruples, 4, n)
    sum_h = np.zeros(len(q))
    wick = np.zeros(len(q))
    for i, j, k, l in _PAIRINGS4:
        pair_vectors = X[q[:, i]] + X[q[:, j]] - X[q[:, k]] - X[q[:, l]]
        sum_h += cosnet_h(net, _norms(pair_vectors))
        wick += g[q[:, i], q[:, j]] * g[q[:, k], q[:, l]]
    if neurons == "distinct":
        return (0.5 * sum_h - g[q[:, 0], q[:, 1]] * g[q[:, 2], q[:, 3]]) / net.width
    return (0.5 * c4 * sum_h - wick) / net.width


def _six_point_patterns():
    """The 10 sign patterns (s1 = +1, three + and three -) of a sextuple, the 15 ways to
    split it into a pair and a quadruple, and its 15 pairings."""
    patterns = []
    for plus in ((i, j) for i in range(1, 6) for j in range(i + 1, 6)):
        patterns.append([1.0 if p == 0 or p in plus else -1.0 for p in range(6)])
    splits = []
    for i in range(6):
        for j in range(i + 1, 6):
            splits.append(((i, j), tuple(p for p in range(6) if p not in (i, j))))

    def pairings(items):
        if not items:
            return [[]]
        first, rest = items[0], items[1:]
        out = []
        for k, other in enumerate(rest):
            for tail in pairings(rest[:k] + rest[k + 1 :]):
                out.append([(first, other)] + tail)
        return out

    return np.asarray(patterns), splits, pairings(list(range(6)))


_PATTERNS6, _SPLITS6, _PAIRINGS6 = _six_point_patterns()


def cosnet_six_point(net, X, sextuples):
    """The connected six-point function (sixth cumulant) of one output at the index
    sextuples (T, 6) of the points X (B, d): (T,), exact at finite width N,

        G6c = (1/N^2) [(c6/4) sum_10 H3(x1 + s2 x2 + ... + s6 x6)
                       - sum_15 G_ij (c4/2) sum_3 H(rest)  + 2 sum_15 G G G],

    the 10 patterns s with s1 = +1 and three + and three -, the 15 splits of the sextuple
    into a pair {i, j} and the quadruple of the rest (its three H patterns as in
    ``cosnet_four_point``), and the 15 pairings; c4, c6 from ``amplitude_moments``,
    H3 = ``cosnet_h3``. It is N kappa6 of one term t = a cos(w . x + b) (module docstring).
    """
    net = _check_net(net)
    X = validate_points(net, X)
    s6 = check_tuples("sextuples", sextuples, 6, X.shape[0])
    c4, c6 = amplitude_moments(net)
    g = cosnet_two_point(net, X)
    pts = X[s6]  # (T, 6, d)
    sum_h3 = cosnet_h3(net, _norms(np.einsum("pj,tjd->ptd", _PATTERNS6, pts))).sum(axis=0)
    pair_quad = np.zeros(len(s6))
    for (i, j), rest in _SPLITS6:
        sum_h = np.zeros(len(s6))
        for a, b, c, d in _PAIRINGS4:
            qa, qb, qc, qd = (rest[a], rest[b], rest[c], rest[d])
            sum_h += cosnet_h(net, _norms(pts[:, qa] + pts[:, qb] - pts[:, qc] - pts[:, qd]))
        pair_quad += g[s6[:, i], s6[:, j]] * sum_h
    ggg = np.zeros(len(s6))
    for pairing in _PAIRINGS6:
        ggg += np.prod([g[s6[:, i], s6[:, j]] for i, j in pairing], axis=0)
    return (0.25 * c6 * sum_h3 - 0.5 * c4 * pair_quad + 2.0 * ggg) / net.width**2


__all__ = [
    "amplitude_moments",
    "cosnet_four_point",
    "cosnet_h",
    "cosnet_h3",
    "cosnet_propagator",
    "cosnet_six_point",
    "cosnet_two_point",
    "omega",
    "radial_fourier",
]
