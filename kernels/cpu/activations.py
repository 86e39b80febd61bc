"""Built-in activations as one scalar switch, so every kernel compiles (and caches) once.

``activate(code, x)`` / ``activate_derivative(code, x)``; the codes are those of
``codes.ACTIVATION_NAMES`` (the last one, exp, is the fall-through). User activations
replace ``activate`` by rebinding the kernels (``kernels.cpu.specialise``).
"""

import math

from numba import njit

from .codes import (
    ACT_COS,
    ACT_ERF,
    ACT_GELU,
    ACT_LEAKY_RELU,
    ACT_LINEAR,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_SIN,
    ACT_SOFTPLUS,
    ACT_SWISH,
    ACT_TANH,
)

LEAKY_RELU_SLOPE = 0.01
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)


@njit(cache=True)
def sigmoid(x):
    """Logistic function, overflow-free for both signs."""
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True)
def activate(code, x):
    """sigma(x) for built-in activation ``code``."""
    if code == ACT_LINEAR:
        return x
    if code == ACT_RELU:
        return x if x > 0.0 else 0.0
    if code == ACT_LEAKY_RELU:
        return x if x > 0.0 else LEAKY_RELU_SLOPE * x
    if code == ACT_TANH:
        return math.tanh(x)
    if code == ACT_ERF:
        return math.erf(x)
    if code == ACT_GELU:
        return 0.5 * x * (1.0 + math.erf(x * _INV_SQRT2))
    if code == ACT_SIGMOID:
        return sigmoid(x)
    if code == ACT_SOFTPLUS:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    if code == ACT_SWISH:
        return x * sigmoid(x)
    if code == ACT_SIN:
        return math.sin(x)
    if code == ACT_COS:
        return math.cos(x)
    return math.exp(x)


@njit(cache=True)
def activate_derivative(code, x):
    """sigma'(x) for built-in activation ``code``."""
    if code == ACT_LINEAR:
        return 1.0
    if code == ACT_RELU:
        return 1.0 if x > 0.0 else 0.0
    if code == ACT_LEAKY_RELU:
        return 1.0 if x > 0.0 else LEAKY_RELU_SLOPE
    if code == ACT_TANH:
        t = math.tanh(x)
        return 1.0 - t * t
    if code == ACT_ERF:
        return _TWO_OVER_SQRTPI * math.exp(-x * x)
    if code == ACT_GELU:
        return 0.5 * (1.0 + math.erf(x * _INV_SQRT2)) + x * _INV_SQRT2PI * math.exp(-0.5 * x * x)
    if code == ACT_SIGMOID:
        s = sigmoid(x)
        return s * (1.0 - s)
    if code == ACT_SOFTPLUS:
        return sigmoid(x)
    if code == ACT_SWISH:
        s = sigmoid(x)
        return s + x * s * (1.0 - s)
    if code == ACT_SIN:
        return math.cos(x)
    if code == ACT_COS:
        return -math.sin(x)
    return math.exp(x)
