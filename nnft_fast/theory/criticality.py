"""Criticality (Roberts & Yaida ch. 5): susceptibilities and critical initialisations.

For a single input at kernel K (z ~ N(0, K)):
    chi_perp(K)     = C_W <sigma'(z)^2>_K
    chi_par(K)      = dK'/dK = C_W / (2 K^2) <sigma(z)^2 (z^2 - K)>_K
with K' = C_b + C_W <sigma(z)^2>_K. Criticality: a fixed point K* = K' with
chi_par(K*) = chi_perp(K*) = 1.
Universality classes recognised:
  "scale-invariant"  sigma(l x) = l sigma(x) (linear, ReLU, leaky ReLU): C_b = 0,
                     C_W = 1/<sigma'^2>, any K;
  "K*=0"             sigma(0) = 0, sigma_1 = sigma'(0) != 0 and
                     a_1 = sigma_3/sigma_1 + (3/4)(sigma_2/sigma_1)^2 < 0 (tanh, erf, sin),
                     so K -> 0 is approached: C_b = 0, C_W = 1/sigma_1^2, K* = 0
                     (sigma_p = p-th derivative at 0; RY eq. 5.85);
  "K*>0"             a fixed point at positive K found numerically (C_b >= 0).

Residual connections, z' = xi z + gamma (b + W sigma(z)) (docs/conventions.md#residual):
K' = xi^2 K + gamma^2 (C_b + C_W <sigma^2>_K), so
    chi_par  = xi^2 + gamma^2 C_W / (2 K^2) <sigma(z)^2 (z^2 - K)>_K,
    chi_perp = xi^2 + gamma^2 C_W <sigma'(z)^2>_K
(chi_perp: d z'_a / d z_a = xi + gamma W sigma'(z_a), whose cross term has mean zero).
chi_par = chi_perp holds at the same K as without the residual term, chi_perp = 1 gives
gamma^2 C_W <sigma'^2> = 1 - xi^2, and the fixed point (1 - xi^2) K* = gamma^2 (C_b + C_W
<sigma^2>): the critical (C_b, C_W) are the plain ones times (1 - xi^2) / gamma^2, at the
same K* and in the same class (ReLU: C_b = 0, C_W = 2 (1 - xi^2) / gamma^2). They exist
for xi^2 < 1 and gamma != 0 only (xi^2 >= 1 gives chi >= 1 for every C_W > 0).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from nnft_fast.activations import get_activation

from .gaussian_integrals import numpy_activation

_NODES = 201
_SCALE_PROBES = np.array([-2.3, -0.7, -0.1, 0.2, 0.9, 3.1])


@dataclass(frozen=True)
class CriticalPoint:
    """Critical (C_b, C_W), the fixed point K* (None: any K), the class name and the
    residual coefficients (xi, gamma) it is critical for."""

    cb: float
    cw: float
    k_star: object
    universality_class: str
    xi: float = 0.0
    gamma: float = 1.0


_hermite_rule = functools.cache(np.polynomial.hermite_e.hermegauss)  # (nodes, weights)


def _gauss_1d(fn, k, n_nodes=_NODES):
    """E[fn(z)], z ~ N(0, k), by ``n_nodes``-point Gauss-Hermite quadrature."""
    x, w = _hermite_rule(n_nodes)
    return float(np.dot(w, fn(math.sqrt(k) * x)) / math.sqrt(2.0 * math.pi))


def _half_line_moment(power, k):
    """E[z^power 1_{z>0}] for z ~ N(0, k): exact, for the piecewise-linear activations."""
    return 0.5 * k ** (power / 2) * float(np.prod(np.arange(power - 1, 0, -2)) if power else 1)


def _is_scale_invariant(sigma):
    x = _SCALE_PROBES
    return all(
        np.allclose(sigma(lam * x), lam * sigma(x), rtol=1e-12, atol=1e-14) for lam in (0.5, 3.0)
    )


def _gaussian_moments(activation, k):
    """(<sigma^2>, <sigma^2 (z^2 - K)>, <sigma'^2>) at kernel k."""
    sigma = numpy_activation(activation)
    if _is_scale_invariant(sigma):
        # sigma = a x (x > 0), b x (x < 0): exact half-line Gaussian moments.
        a, b = float(sigma(np.array([1.0]))[0]), -float(sigma(np.array([-1.0]))[0])
        s2 = (a * a + b * b) * _half_line_moment(2, k)
        s2z = (a * a + b * b) * (_half_line_moment(4, k) - k * _half_line_moment(2, k))
        d2 = 0.5 * (a * a + b * b)
        return s2, s2z, d2
    dsigma = np.vectorize(activation.dfn, otypes=[np.float64])
    return (
        _gauss_1d(lambda z: sigma(z) ** 2, k),
        _gauss_1d(lambda z: sigma(z) ** 2 * (z * z - k), k),
        _gauss_1d(lambda z: dsigma(z) ** 2, k),
    )


def _a1(activation, d1, h=1e-3):
    """a_1 = sigma_3/sigma_1 + (3/4)(sigma_2/sigma_1)^2 from central differences of sigma'."""
    d = activation.dfn
    d2 = (d(h) - d(-h)) / (2.0 * h)
    d3 = (d(h) - 2.0 * d1 + d(-h)) / (h * h)
    return d3 / d1 + 0.75 * (d2 / d1) ** 2


def _residual_coefficient(name, value):
    """xi or gamma as a finite float (TypeError / ValueError naming it)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
        value, (int, float, np.integer, np.floating)
    ):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def susceptibilities(activation, cb, cw, k, xi=0.0, gamma=1.0):
    """(chi_par, chi_perp) at kernel k > 0 for weight/bias variances (cw, cb) and the
    residual coefficients (xi, gamma) of the layer (defaults: no residual connection).

    cb does not enter the susceptibilities; it is accepted for a uniform signature.
    """
    activation = get_activation(activation)
    xi = _residual_coefficient("xi", xi)
    gamma = _residual_coefficient("gamma", gamma)
    if not k > 0:
        raise ValueError(f"kernel k must be positive, got {k}")
    _, s2z, d2 = _gaussian_moments(activation, k)
    chi_par, chi_perp = cw * s2z / (2.0 * k * k), cw * d2
    if xi == 0.0 and gamma == 1.0:
        return chi_par, chi_perp
    return xi * xi + gamma * gamma * chi_par, xi * xi + gamma * gamma * chi_perp


def find_critical(activation, k_range=(1e-4, 1e2), xi=0.0, gamma=1.0):
    """Critical initialisation of ``activation`` (see the module docstring), for residual
    layers z' = xi z + gamma (b + W sigma(z)) if (xi, gamma) != (0, 1): the plain critical
    (C_b, C_W) times (1 - xi^2) / gamma^2 (needs xi^2 < 1, gamma != 0)."""
    activation = get_activation(activation)
    xi = _residual_coefficient("xi", xi)
    gamma = _residual_coefficient("gamma", gamma)
    if xi == 0.0 and gamma == 1.0:
        return _plain_critical(activation, k_range)
    if not xi * xi < 1.0:
        raise ValueError(
            f"no critical initialisation for xi = {xi}: xi^2 >= 1 makes chi >= 1 for every "
            "C_W > 0 (chi = xi^2 + gamma^2 C_W <sigma'^2>)"
        )
    if gamma == 0.0:
        raise ValueError("no critical initialisation for gamma = 0: chi = xi^2 < 1 at any C_W")
    plain = _plain_critical(activation, k_range)
    scale = (1.0 - xi * xi) / (gamma * gamma)
    return CriticalPoint(
        plain.cb * scale, plain.cw * scale, plain.k_star, plain.universality_class, xi, gamma
    )


def _plain_critical(activation, k_range):
    """Critical point without residual connections (``find_critical``)."""
    sigma = numpy_activation(activation)
    if _is_scale_invariant(sigma):
        _, _, d2 = _gaussian_moments(activation, 1.0)
        return CriticalPoint(0.0, 1.0 / d2, None, "scale-invariant")
    s0 = float(sigma(np.array([0.0]))[0])
    d1 = float(activation.dfn(0.0))
    if s0 == 0.0 and d1 != 0.0 and _a1(activation, d1) < 0:
        return CriticalPoint(0.0, 1.0 / (d1 * d1), 0.0, "K*=0")

    def mismatch(k):
        s2, s2z, d2 = _gaussian_moments(activation, k)
        return (s2z / (2.0 * k * k)) / d2 - 1.0

    grid = np.geomspace(*k_range, 200)
    values = [mismatch(k) for k in grid]
    for k_lo, k_hi, f_lo, f_hi in zip(grid, grid[1:], values, values[1:]):
        if f_lo * f_hi < 0:
            k_star = brentq(mismatch, k_lo, k_hi, xtol=1e-14)
            s2, _, d2 = _gaussian_moments(activation, k_star)
            cw = 1.0 / d2
            cb = k_star - cw * s2
            if cb >= 0:
                return CriticalPoint(cb, cw, k_star, "K*>0")
    raise ValueError(
        f"no critical initialisation with C_b >= 0 found for {activation.name!r} in K in {k_range}"
    )


__all__ = ["CriticalPoint", "find_critical", "susceptibilities"]
