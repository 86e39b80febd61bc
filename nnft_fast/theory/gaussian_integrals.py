"""Gaussian expectations <f(u) g(v)> for (u, v) ~ N(0, [[Kaa, Kab], [Kab, Kbb]]).

Closed forms where they exist (``closed_form_pair``); otherwise tensor-product
Gauss-Hermite quadrature on the Cholesky factor (``quadrature_pair``), exact for
polynomials of degree < 2 * n_nodes in each variable and spectrally accurate for smooth
activations.
"""
import math

import numpy as np
from scipy.special import erf as _erf

from nnft_fast.activations import LEAKY_RELU_SLOPE

DEFAULT_NODES = 96

NUMPY_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "leaky_relu": lambda x: np.where(x > 0, x, LEAKY_RELU_SLOPE * x),
    "tanh": np.tanh,
    "erf": _erf,
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "sigmoid": lambda x: 0.5 * (1.0 + np.tanh(0.5 * x)),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "swish": lambda x: x * 0.5 * (1.0 + np.tanh(0.5 * x)),
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
}


def numpy_activation(activation):
    """Vectorised sigma for an ``nf.Activation`` (built-ins exactly, user ones elementwise)."""
    if activation.is_builtin:
        return NUMPY_ACTIVATIONS[activation.name]
    return np.vectorize(activation.fn, otypes=[np.float64])


def _hermite(n_nodes):
    """Nodes/weights for E[h(g)], g ~ N(0, 1) (probabilists' Gauss-Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    return x, w / math.sqrt(2.0 * math.pi)


def quadrature_pair(f, g, kaa, kab, kbb, n_nodes=DEFAULT_NODES):
    """<f(u) g(v)> by 2-D Gauss-Hermite quadrature."""
    x, w = _hermite(n_nodes)
    sa = math.sqrt(max(kaa, 0.0))
    if sa == 0.0:
        return float(f(np.zeros(1))[0] * np.dot(w, g(math.sqrt(max(kbb, 0.0)) * x)))
    rho = kab / sa
    rest = math.sqrt(max(kbb - rho * rho, 0.0))
    u = sa * x[:, None]
    v = rho * x[:, None] + rest * x[None, :]
    return float(np.einsum("i,j,ij->", w, w, f(u) * g(v)))


def _relu_arccos(kaa, kab, kbb):
    """<relu(u) relu(v)> = sqrt(Kaa Kbb)/(2 pi) (sin t + (pi - t) cos t), cos t = corr."""
    norm = math.sqrt(kaa * kbb)
    if norm == 0.0:
        return 0.0
    c = min(1.0, max(-1.0, kab / norm))
    t = math.acos(c)
    return norm / (2.0 * math.pi) * (math.sin(t) + (math.pi - t) * c)


def closed_form_pair(name, kaa, kab, kbb):
    """<sigma(u) sigma(v)> in closed form for a built-in activation, or None."""
    if name == "linear":
        return kab
    if name == "relu":
        return _relu_arccos(kaa, kab, kbb)
    if name == "leaky_relu":
        a = LEAKY_RELU_SLOPE
        return (1.0 + a * a) * _relu_arccos(kaa, kab, kbb) - 2.0 * a * _relu_arccos(kaa, -kab, kbb)
    if name == "erf":
        return 2.0 / math.pi * math.asin(2.0 * kab / math.sqrt((1.0 + 2.0 * kaa) * (1.0 + 2.0 * kbb)))
    if name == "sin":
        return math.exp(-0.5 * (kaa + kbb)) * math.sinh(kab)
    if name == "cos":
        return math.exp(-0.5 * (kaa + kbb)) * math.cosh(kab)
    if name == "exp":
        return math.exp(0.5 * (kaa + kbb) + kab)
    return None


def sigma_pair(activation, kaa, kab, kbb, n_nodes=DEFAULT_NODES):
    """<sigma(u) sigma(v)>: closed form where known, quadrature otherwise."""
    if activation.is_builtin:
        value = closed_form_pair(activation.name, kaa, kab, kbb)
        if value is not None:
            return value
    s = numpy_activation(activation)
    return quadrature_pair(s, s, kaa, kab, kbb, n_nodes)
