"""Built-in activations as one scalar switch, so every kernel compiles (and caches) once.

``activate(code, x)`` / ``activate_derivative(code, x)``; codes are the positions in
``ACTIVATION_NAMES``. User activations replace ``activate`` by rebinding the kernels
(``kernels.cpu.specialise``).
"""
import math

from numba import njit

ACTIVATION_NAMES = ("linear", "relu", "leaky_relu", "tanh", "erf", "gelu", "sigmoid",
                    "softplus", "swish", "sin", "cos", "exp")
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
    if code == 0:
        return x
    if code == 1:
        return x if x > 0.0 else 0.0
    if code == 2:
        return x if x > 0.0 else LEAKY_RELU_SLOPE * x
    if code == 3:
        return math.tanh(x)
    if code == 4:
        return math.erf(x)
    if code == 5:
        return 0.5 * x * (1.0 + math.erf(x * _INV_SQRT2))
    if code == 6:
        return sigmoid(x)
    if code == 7:
        return max(x, 0.0) + math.log1p(math.exp(-abs(x)))
    if code == 8:
        return x * sigmoid(x)
    if code == 9:
        return math.sin(x)
    if code == 10:
        return math.cos(x)
    return math.exp(x)


@njit(cache=True)
def activate_derivative(code, x):
    """sigma'(x) for built-in activation ``code``."""
    if code == 0:
        return 1.0
    if code == 1:
        return 1.0 if x > 0.0 else 0.0
    if code == 2:
        return 1.0 if x > 0.0 else LEAKY_RELU_SLOPE
    if code == 3:
        t = math.tanh(x)
        return 1.0 - t * t
    if code == 4:
        return _TWO_OVER_SQRTPI * math.exp(-x * x)
    if code == 5:
        return 0.5 * (1.0 + math.erf(x * _INV_SQRT2)) + x * _INV_SQRT2PI * math.exp(-0.5 * x * x)
    if code == 6:
        s = sigmoid(x)
        return s * (1.0 - s)
    if code == 7:
        return sigmoid(x)
    if code == 8:
        s = sigmoid(x)
        return s + x * s * (1.0 - s)
    if code == 9:
        return math.cos(x)
    if code == 10:
        return -math.sin(x)
    return math.exp(x)
