"""Gaussian expectations <f(u) g(v)> for (u, v) ~ N(0, [[Kaa, Kab], [Kab, Kbb]]).

``sigma_pair`` and ``dsigma_pair`` give <sigma sigma> and <sigma' sigma'>: in closed form
for the built-ins that have one (``closed_form_pair``, ``closed_form_dpair``: linear, relu,
leaky_relu, erf, sin, cos, exp), otherwise by ``quadrature_pair``, a trapezoidal rule in a
Cholesky frame that resolves both the Gaussian and the activation, accurate to 1e-13 or
better for integrands analytic in a strip around the real axis (tanh, gelu, sigmoid,
softplus, swish and their derivatives) at any variance and correlation, +-1 included.
Kinked or discontinuous user activations converge only algebraically.
"""

import math

import numpy as np
from scipy.special import erf as _erf

from nnft_fast.activations import LEAKY_RELU_SLOPE

DEFAULT_NODES = 96
SPAN = 11.0  # standard deviations covered: room for a mean shift by exponential growth
CHUNK = 1 << 20  # quadrature points evaluated at once

_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


def _gelu_derivative(x):
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0))) + x * _INV_SQRT2PI * np.exp(-0.5 * x * x)


NUMPY_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, LEAKY_RELU_SLOPE * x),
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "sigmoid": _sigmoid,
    "softplus": lambda x: np.logaddexp(0.0, x),
    "swish": lambda x: x * _sigmoid(x),
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
}
NUMPY_DERIVATIVES = {
    "linear": np.ones_like,
    "relu": lambda x: np.where(x > 0, 1.0, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, 1.0, LEAKY_RELU_SLOPE),
    "tanh": lambda x: 1.0 - np.tanh(x) ** 2,
    "erf": lambda x: 2.0 / math.sqrt(math.pi) * np.exp(-x * x),
    "gelu": _gelu_derivative,
    "sigmoid": lambda x: _sigmoid(x) * _sigmoid(-x),
    "softplus": _sigmoid,
    "swish": lambda x: _sigmoid(x) * (1.0 + x * _sigmoid(-x)),
    "sin": np.cos,
    "cos": lambda x: -np.sin(x),
    "exp": np.exp,
}


def numpy_activation(activation):
    """Vectorised sigma for an ``nf.Activation`` (built-ins exactly, user ones elementwise)."""
    if activation.is_builtin:
        return NUMPY_ACTIVATIONS[activation.name]
    return np.vectorize(activation.fn, otypes=[np.float64])


def numpy_derivative(activation):
    """Vectorised sigma' for an ``nf.Activation`` (built-ins exactly, user ones elementwise)."""
    if activation.is_builtin:
        return NUMPY_DERIVATIVES[activation.name]
    return np.vectorize(activation.dfn, otypes=[np.float64])


def _trapezoid(scale, n_nodes):
    """Nodes s and weights for E[h(s)], s ~ N(0, 1), when h varies on the scale 1/scale:
    the trapezoidal rule on [-SPAN, SPAN] with step min(1/2, 2 SPAN / (n_nodes scale)),
    i.e. at most half a standard deviation and at most 2 SPAN / n_nodes in z = scale * s."""
    step = 2.0 * SPAN / max(n_nodes * scale, 4.0 * SPAN)
    s = step * np.arange(-math.ceil(SPAN / step), math.ceil(SPAN / step) + 1)
    return s, step * _INV_SQRT2PI * np.exp(-0.5 * s * s)


def quadrature_pair(f, g, kaa, kab, kbb, n_nodes=DEFAULT_NODES):
    """<f(u) g(v)> by the trapezoidal rule in the frame u = sqrt(Kaa) x,
    v = (Kab/Kaa) u + sqrt(Kbb - Kab^2/Kaa) y, x and y iid N(0, 1), the wider variable
    taken as u.

    Each direction's step is the smaller of 1/2 (the Gaussian's scale) and 2 SPAN / n_nodes
    in z (the activation's scale, 1 for the built-ins). For f, g analytic in a strip
    |Im z| < d the error falls like exp(-pi d n_nodes / SPAN), at any variance: for
    <tanh' tanh'> (d = pi/2, the hardest built-in; worst on the diagonal) 2e-8 at
    n_nodes = 64, 3e-11 at 80, 5e-14 at the default 96, rounding at 128. SPAN leaves room
    for integrands growing up to like exp(2 |z|) at K ~ 2. Correlation +-1 (zero
    conditional variance) is covered exactly. Points: about max(45, n_nodes sqrt(Kaa))
    times max(45, n_nodes sqrt(Kbb - Kab^2/Kaa)), 1e6 at K ~ 100.
    """
    if kbb > kaa:
        f, g, kaa, kbb = g, f, kbb, kaa
    sa = math.sqrt(max(kaa, 0.0))
    slope = kab / kaa if kaa > 0.0 else 0.0
    rest = math.sqrt(max(kbb - slope * kab, 0.0))
    x, wx = _trapezoid(sa, n_nodes)
    y, wy = _trapezoid(rest, n_nodes)
    u = sa * x
    fw = wx * f(u)
    rows = max(1, CHUNK // len(y))
    total = 0.0
    for start in range(0, len(x), rows):
        block = slice(start, start + rows)
        v = slope * u[block, None] + rest * y[None, :]
        total += fw[block] @ (g(v) @ wy)
    return float(total)


def _sin_minus_x_cos(p):
    """sin p - p cos p, by its series sum_k (-1)^(k+1) 2k p^(2k+1) / (2k+1)! below 1/2
    (where the difference cancels)."""
    if p > 0.5:
        return math.sin(p) - p * math.cos(p)
    return sum(
        (-1) ** (k + 1) * 2 * k * p ** (2 * k + 1) / math.factorial(2 * k + 1) for k in range(1, 9)
    )


def _arccos_moments(kaa, kab, kbb):
    """(<relu(u) relu(v)>, <H(u) H(v)>), H the step with H(0) = 0 (relu' as the kernels
    define it): the arc-cosine kernels sqrt(Kaa Kbb) (sin t + (pi - t) cos t) / (2 pi) and
    (pi - t) / (2 pi), cos t = Kab / sqrt(Kaa Kbb); both 0 if a variance is 0. Written in
    p = pi - t = arccos(-cos t) as sqrt(Kaa Kbb) (sin p - p cos p) / (2 pi) and p / (2 pi),
    accurate as the kernels vanish near correlation -1."""
    norm = math.sqrt(kaa * kbb)
    if norm == 0.0:
        return 0.0, 0.0
    p = math.acos(min(1.0, max(-1.0, -kab / norm)))
    return norm / (2.0 * math.pi) * _sin_minus_x_cos(p), p / (2.0 * math.pi)


def closed_form_pair(name, kaa, kab, kbb):
    """<sigma(u) sigma(v)> in closed form for a built-in activation, or None.

    linear: Kab.  relu: the arc-cosine kernel (``_arccos_moments``).
    leaky_relu (slope s): sigma = (1 - s) relu + s z gives (1 - s)^2 <relu relu> + s Kab
    (<relu(u) v> = Kab / 2).  erf (erf(z) = (2/sqrt(pi)) int_0^z e^{-t^2} dt, the
    kernels' normalisation): (2/pi) arcsin(2 Kab / sqrt((1 + 2 Kaa)(1 + 2 Kbb))).
    sin: e^{-(Kaa+Kbb)/2} sinh Kab.  cos: e^{-(Kaa+Kbb)/2} cosh Kab.
    exp: e^{(Kaa+Kbb)/2 + Kab}.
    """
    if name == "linear":
        return kab
    if name == "relu":
        return _arccos_moments(kaa, kab, kbb)[0]
    if name == "leaky_relu":
        s = LEAKY_RELU_SLOPE
        return (1.0 - s) ** 2 * _arccos_moments(kaa, kab, kbb)[0] + s * kab
    if name == "erf":
        return (
            2.0 / math.pi * math.asin(2.0 * kab / math.sqrt((1.0 + 2.0 * kaa) * (1.0 + 2.0 * kbb)))
        )
    if name == "sin":
        return math.exp(-0.5 * (kaa + kbb)) * math.sinh(kab)
    if name == "cos":
        return math.exp(-0.5 * (kaa + kbb)) * math.cosh(kab)
    if name == "exp":
        return math.exp(0.5 * (kaa + kbb) + kab)
    return None


def closed_form_dpair(name, kaa, kab, kbb):
    """<sigma'(u) sigma'(v)> in closed form for a built-in activation, or None.

    linear: 1.  relu: <H(u) H(v)> = (pi - t)/(2 pi) (``_arccos_moments``).
    leaky_relu (slope s): sigma' = (1 - s) H + s gives
    (1 - s)^2 <H(u) H(v)> + s (1 - s)(<H(u)> + <H(v)>) + s^2, <H(u)> = 1/2 if Kaa > 0
    else 0 (H(0) = 0).  erf: (4/pi) / sqrt((1 + 2 Kaa)(1 + 2 Kbb) - 4 Kab^2)
    (= (4/pi) det(1 + 2K)^{-1/2}).  sin: <cos cos>, cos: <sin sin>, exp: <exp exp>.
    """
    if name == "linear":
        return 1.0
    if name == "relu":
        return _arccos_moments(kaa, kab, kbb)[1]
    if name == "leaky_relu":
        s = LEAKY_RELU_SLOPE
        halves = 0.5 * (float(kaa > 0.0) + float(kbb > 0.0))
        return (1.0 - s) ** 2 * _arccos_moments(kaa, kab, kbb)[1] + s * (1.0 - s) * halves + s * s
    if name == "erf":
        return 4.0 / math.pi / math.sqrt((1.0 + 2.0 * kaa) * (1.0 + 2.0 * kbb) - 4.0 * kab * kab)
    derivative_pair = {"sin": "cos", "cos": "sin", "exp": "exp"}.get(name)
    return None if derivative_pair is None else closed_form_pair(derivative_pair, kaa, kab, kbb)


def _pair(closed_form, vectorised, activation, kaa, kab, kbb, n_nodes):
    if activation.is_builtin:
        value = closed_form(activation.name, kaa, kab, kbb)
        if value is not None:
            return value
    h = vectorised(activation)
    return quadrature_pair(h, h, kaa, kab, kbb, n_nodes)


def sigma_pair(activation, kaa, kab, kbb, n_nodes=DEFAULT_NODES):
    """<sigma(u) sigma(v)>: closed form where known, quadrature otherwise."""
    return _pair(closed_form_pair, numpy_activation, activation, kaa, kab, kbb, n_nodes)


def dsigma_pair(activation, kaa, kab, kbb, n_nodes=DEFAULT_NODES):
    """<sigma'(u) sigma'(v)>: closed form where known, quadrature otherwise."""
    return _pair(closed_form_dpair, numpy_derivative, activation, kaa, kab, kbb, n_nodes)
