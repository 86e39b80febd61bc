"""Cos-net fields: the specification of a Fourier-feature network ensemble on points of R^d
and the host side of its exact momentum sampler (docs/fields.md).

One network of width N is the field

    phi_k(x) = sum_{i=1..N} a_{k i} cos(w_i . x + b_i),    k = 1..n_out,

with phases b_i ~ U(-pi, pi) and, for the propagator family (``momenta="propagator"``),
P(k) = 1 / (k^2 + m^2) cut off at |w| < Lambda:

    w_i ~ rho_alpha(w) = P(|w|)^(1 + alpha) / Z_alpha,
    Z_alpha = int_{|w|<Lambda} P^(1+alpha) d^d w,
    E[a_{ki}^2 | w_i] = (2 / N) A_alpha(|w_i|),   A_alpha(k) = Z_alpha P(k)^(-alpha) / (2 pi)^d,

so that for every alpha the infinite-width two-point function is the cut-off propagator
G(r) = int_{|p|<Lambda} d^d p / (2 pi)^d cos(p . r) / (p^2 + m^2). The Gaussian-momentum
family (``CosNet.gaussian_kernel``: w ~ N(0, I_d / length^2), E[a^2 | w] = 2 variance / N)
has G(r) = variance * exp(-r^2 / (2 length^2)), the Gauss-net kernel of
Halverson-Maiti-Stoner. Amplitude laws: "gaussian" (a Gaussian given w, E a^4 = 3 (E a^2)^2)
or "constant" (|a| fixed given w; its sign is irrelevant since b is uniform).

The radial density of |w| is f(k) = k^(d-1) P(k)^(1+alpha) on [0, Lambda]. ``RadialSampler``
gives the kernels what they need to invert its CDF exactly (to rounding): a closed form
where one exists, else a table of accurately integrated CDF values on which the kernel
runs a safeguarded Newton iteration with Gauss-Legendre sub-integrals.
"""

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from nnft_fast.kernels.cpu.codes import (
    RADIAL_D1_ALPHA0,
    RADIAL_D2,
    RADIAL_D3_ALPHA0,
    RADIAL_GAUSSIAN,
    RADIAL_TABLE,
    RADIAL_UNIFORM,
)

AMPLITUDES = ("gaussian", "constant")
MOMENTA = ("propagator", "gaussian")
DEFAULT_ALPHA = 0.0
DEFAULT_AMPLITUDE = "gaussian"
DEFAULT_N_OUT = 1
DEFAULT_LENGTH = 1.0
DEFAULT_VARIANCE = 1.0
NEWTON_CODES = (RADIAL_TABLE, RADIAL_D3_ALPHA0)  # the codes inverted by Newton on the table
RADIAL_TABLE_SIZE = 1024  # CDF table intervals of the generic radial sampler
GL_NODES = 16  # Gauss-Legendre nodes of the kernel's sub-integrals
HOST_GL_NODES = 40  # Gauss-Legendre nodes per interval of the host's CDF table


def sphere_area(dim):
    """S_{d-1} = 2 pi^(d/2) / Gamma(d/2), the area of the unit sphere in R^d (2 for d = 1)."""
    return 2.0 * math.pi ** (dim / 2) / math.gamma(dim / 2)


def _positive_int(name, value):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _real(name, value, positive):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if positive and value <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")
    return value


def _choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


@dataclass(frozen=True)
class CosNet:
    """A cos-net field ensemble (module docstring): dimension d, width N, mass m, cut-off
    Lambda, momentum exponent alpha, amplitude law and number of outputs.

    Parameters
    ----------
    dim : int
        Dimension d >= 1 of the points x.
    width : int
        Number N >= 1 of cosine features; connected functions scale as 1/N.
    mass, cutoff : float
        m > 0 and Lambda > 0 of the propagator 1 / (k^2 + m^2) on |k| < Lambda.
    alpha : float, default 0.0
        Momenta drawn with density P^(1 + alpha): -1 uniform (amplitudes ~ P^(1/2)), 0 the
        propagator itself (constant amplitudes). Any finite value.
    amplitude : {"gaussian", "constant"}, default "gaussian"
        Law of the amplitudes given the momentum.
    n_out : int, default 1
        Fields per network sharing the features (independent amplitudes): the "neurons" of
        the field layer.

    Notes
    -----
    ``CosNet.gaussian_kernel`` builds the Gaussian-momentum family instead.
    """

    dim: int
    width: int
    mass: float = None
    cutoff: float = None
    alpha: float = DEFAULT_ALPHA
    amplitude: str = DEFAULT_AMPLITUDE
    n_out: int = DEFAULT_N_OUT
    momenta: str = "propagator"
    length: float = None
    variance: float = None
    radial: "RadialSampler" = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "dim", _positive_int("dim", self.dim))
        set_(self, "width", _positive_int("width", self.width))
        set_(self, "n_out", _positive_int("n_out", self.n_out))
        set_(self, "amplitude", _choice("amplitude", self.amplitude, AMPLITUDES))
        set_(self, "momenta", _choice("momenta", self.momenta, MOMENTA))
        if self.momenta == "propagator":
            for name in ("mass", "cutoff"):
                if getattr(self, name) is None:
                    raise TypeError(f"CosNet needs {name}= (a real number > 0)")
                set_(self, name, _real(name, getattr(self, name), True))
            set_(self, "alpha", _real("alpha", self.alpha, False))
            if self.length is not None or self.variance is not None:
                raise ValueError(
                    "length and variance belong to the Gaussian-momentum family "
                    "(CosNet.gaussian_kernel); a propagator cos-net takes mass and cutoff"
                )
        else:
            if self.mass is not None or self.cutoff is not None:
                raise ValueError(
                    "a Gaussian-momentum cos-net takes length and variance, not mass/cutoff"
                )
            set_(self, "length", _real("length", self.length, True))
            set_(self, "variance", _real("variance", self.variance, True))
            set_(self, "alpha", 0.0)
        set_(self, "radial", RadialSampler.of(self))

    @classmethod
    def gaussian_kernel(
        cls,
        dim,
        width,
        length=DEFAULT_LENGTH,
        variance=DEFAULT_VARIANCE,
        amplitude=DEFAULT_AMPLITUDE,
        n_out=DEFAULT_N_OUT,
    ):
        """Cos-net with Gaussian momenta w ~ N(0, I_d / length^2) and E[a^2 | w] =
        2 variance / N: G(r) = variance exp(-|r|^2 / (2 length^2)) at infinite width."""
        return cls(
            dim,
            width,
            amplitude=amplitude,
            n_out=n_out,
            momenta="gaussian",
            length=length,
            variance=variance,
        )

    # The Ensemble API's view of the field: one layer, n_out neurons, fan-in N.
    @property
    def n_layers(self):
        """1: the field is the ensemble's layer 1."""
        return 1

    @property
    def input_dim(self):
        return self.dim

    @property
    def widths(self):
        """(N, n_out): the fan-in of the field layer (normalising its vertex V = N C like
        ``Network``'s n_{l-1}) and its number of outputs."""
        return (self.width, self.n_out)

    @property
    def normalisation(self):
        """Z_alpha = int_{|w|<Lambda} P^(1+alpha) d^d w (None for Gaussian momenta)."""
        return self.radial.z

    def amplitude_variance(self, k):
        """E[a^2 | |w| = k] * N / 2 = A_alpha(k) (variance for Gaussian momenta)."""
        k = np.asarray(k, dtype=np.float64)
        if self.momenta == "gaussian":
            return np.full(k.shape, self.variance)
        return self.radial.z * (k * k + self.mass**2) ** self.alpha / (2 * math.pi) ** self.dim

    def config(self):
        """Plain-Python description (stores, shards, reports); ``CosNet(**c)`` rebuilds it
        from ``c`` without "kind"."""
        out = {
            "kind": "cosnet",
            "dim": self.dim,
            "width": self.width,
            "amplitude": self.amplitude,
            "n_out": self.n_out,
            "momenta": self.momenta,
        }
        if self.momenta == "propagator":
            out.update(mass=self.mass, cutoff=self.cutoff, alpha=self.alpha)
        else:
            out.update(length=self.length, variance=self.variance)
        return out

    @classmethod
    def from_config(cls, config):
        """The CosNet of ``config()``."""
        args = {k: v for k, v in config.items() if k != "kind"}
        return cls(**args)


def radial_density(dim, mass, alpha, k):
    """f(k) = k^(d-1) (k^2 + m^2)^-(1 + alpha), the density of |w| up to normalisation."""
    k = np.asarray(k, dtype=np.float64)
    return k ** (dim - 1) * (k * k + mass * mass) ** (-(1.0 + alpha))


def _closed_form_code(dim, alpha):
    """The kernel's closed-form radial inverse for (d, alpha), or RADIAL_TABLE."""
    if alpha == -1.0:
        return RADIAL_UNIFORM
    if dim == 1 and alpha == 0.0:
        return RADIAL_D1_ALPHA0
    if dim == 2:
        return RADIAL_D2
    if dim == 3 and alpha == 0.0:
        return RADIAL_D3_ALPHA0
    return RADIAL_TABLE


@dataclass(frozen=True, eq=False)
class RadialSampler:
    """What the kernels need to draw |w| exactly (module docstring).

    code: one of ``kernels.cpu.codes.RADIAL_*``; params: (m, Lambda, alpha, dim, F_total,
    scale) float64 with F_total = int_0^Lambda f and scale = sqrt(2 (2 pi)^-d Z / N) (the
    amplitude scale at P^-alpha = 1; sqrt(2 variance / N) and 1 / length for Gaussian
    momenta in params[5] and params[1]); table: (RADIAL_TABLE_SIZE + 1, 3) rows (k_j,
    F(k_j), f(k_j)) at approximate quantiles k_j, F accurate to rounding (the intervals
    and initial guesses of the Newton codes; empty for the closed-form inverses); z:
    Z_alpha (None for Gaussian momenta).
    """

    code: int
    params: np.ndarray
    table: np.ndarray
    z: float

    @classmethod
    def of(cls, net):
        if net.momenta == "gaussian":
            params = np.array(
                [
                    0.0,
                    1.0 / net.length,
                    0.0,
                    net.dim,
                    1.0,
                    math.sqrt(2.0 * net.variance / net.width),
                ]
            )
            return cls(RADIAL_GAUSSIAN, params, np.zeros((0, 3)), None)
        d, m, lam, alpha = net.dim, net.mass, net.cutoff, net.alpha
        code = _closed_form_code(d, alpha)
        if code in NEWTON_CODES:  # Newton on a CDF table (closed-form F for d = 3, alpha = 0)
            table, f_total = _cdf_table(d, m, lam, alpha)
            if code == RADIAL_D3_ALPHA0:
                table[:, 1] = [m * _x_minus_atan(k / m) for k in table[:, 0]]
                f_total = float(table[-1, 1])
        else:
            table, f_total = np.zeros((0, 3)), _closed_form_total(code, d, m, lam, alpha)
        z = sphere_area(d) * f_total
        scale = math.sqrt(2.0 * z / ((2.0 * math.pi) ** d * net.width))
        params = np.array([m, lam, alpha, d, f_total, scale])
        return cls(code, params, table, z)


def _closed_form_total(code, dim, mass, lam, alpha):
    """F_total = int_0^Lambda f for the closed-form codes (each written without
    cancellation)."""
    if code == RADIAL_UNIFORM:
        return lam**dim / dim
    if code == RADIAL_D1_ALPHA0:
        return math.atan(lam / mass) / mass
    if code == RADIAL_D2:
        log_ratio = math.log1p((lam / mass) ** 2)
        if alpha == 0.0:
            return 0.5 * log_ratio
        return -(mass ** (-2.0 * alpha)) * math.expm1(-alpha * log_ratio) / (2.0 * alpha)
    x = lam / mass  # RADIAL_D3_ALPHA0: m (x - arctan x)
    return mass * _x_minus_atan(x)


def _x_minus_atan(x):
    """x - arctan(x), by its series below 1/4 (no cancellation)."""
    if x >= 0.25:
        return x - math.atan(x)
    x2, term, total = x * x, x**3, 0.0
    for n in range(1, 40):
        total += term / (2 * n + 1) * (1 if n % 2 else -1)
        term *= x2
    return total


def _cdf_table(dim, mass, lam, alpha):
    """(table (RADIAL_TABLE_SIZE + 1, 3) of (k_j, F(k_j), f(k_j)), F_total).

    F is accumulated interval by interval, each by a HOST_GL_NODES-point Gauss-Legendre
    rule (f is analytic on [0, Lambda]: converged to rounding on intervals this short);
    the nodes k_j are first placed at equal steps of
    a coarse CDF, so each interval carries about 1 / RADIAL_TABLE_SIZE of the mass."""
    coarse = np.linspace(0.0, lam, 4097)
    mids = 0.5 * (coarse[1:] + coarse[:-1])
    mass_coarse = np.concatenate(
        [[0.0], np.cumsum(radial_density(dim, mass, alpha, mids) * np.diff(coarse))]
    )
    targets = np.linspace(0.0, mass_coarse[-1], RADIAL_TABLE_SIZE + 1)
    nodes = np.interp(targets, mass_coarse, coarse)
    nodes[0], nodes[-1] = 0.0, lam
    nodes = np.maximum.accumulate(nodes)
    x, w = special.roots_legendre(HOST_GL_NODES)
    mid, half = 0.5 * (nodes[1:] + nodes[:-1]), 0.5 * (nodes[1:] - nodes[:-1])
    values = radial_density(dim, mass, alpha, mid[:, None] + half[:, None] * x[None, :])
    pieces = half * (values @ w)
    cdf = np.concatenate([[0.0], np.cumsum(pieces)])
    table = np.stack([nodes, cdf, radial_density(dim, mass, alpha, nodes)], axis=1)
    return np.ascontiguousarray(table), float(cdf[-1])


__all__ = ["AMPLITUDES", "MOMENTA", "CosNet", "RadialSampler", "radial_density", "sphere_area"]
