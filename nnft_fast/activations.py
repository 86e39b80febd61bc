"""Activation registry: name -> (Numba function, Numba derivative).

Every activation is a scalar @njit function, passed to the kernels as a first-class
function (each distinct activation compiles its own specialisation once).
User activations: ``Activation("mine", fn, dfn)`` with Numba-compilable ``fn``/``dfn``.
"""
import math
from dataclasses import dataclass
from typing import Callable

from numba import njit
from numba.core.registry import CPUDispatcher

LEAKY_RELU_SLOPE = 0.01
_INV_SQRT2 = 1.0 / math.sqrt(2.0)
_INV_SQRT2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRTPI = 2.0 / math.sqrt(math.pi)


@dataclass(frozen=True)
class Activation:
    """A named scalar activation sigma(x) with its derivative sigma'(x)."""

    name: str
    fn: Callable
    dfn: Callable

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("Activation name must be a non-empty string")
        for label, f in (("fn", self.fn), ("dfn", self.dfn)):
            if not callable(f):
                raise TypeError(f"Activation {label} must be callable, got {type(f).__name__}")
        object.__setattr__(self, "fn", _as_njit(self.fn))
        object.__setattr__(self, "dfn", _as_njit(self.dfn))
        for label, f in (("fn", self.fn), ("dfn", self.dfn)):
            try:
                value = f(0.5)
            except Exception as exc:  # numba typing errors surface here
                raise TypeError(f"Activation {self.name!r}: {label} is not Numba-compilable "
                                f"for a float argument: {exc}") from exc
            if not isinstance(value, float):
                raise TypeError(f"Activation {self.name!r}: {label}(0.5) must return a float")


def _as_njit(f):
    return f if isinstance(f, CPUDispatcher) else njit(f)


@njit
def _linear(x):
    return x


@njit
def _one(x):
    return 1.0


@njit
def _relu(x):
    return x if x > 0.0 else 0.0


@njit
def _relu_d(x):
    return 1.0 if x > 0.0 else 0.0


@njit
def _leaky_relu(x):
    return x if x > 0.0 else LEAKY_RELU_SLOPE * x


@njit
def _leaky_relu_d(x):
    return 1.0 if x > 0.0 else LEAKY_RELU_SLOPE


@njit
def _tanh(x):
    return math.tanh(x)


@njit
def _tanh_d(x):
    t = math.tanh(x)
    return 1.0 - t * t


@njit
def _erf(x):
    return math.erf(x)


@njit
def _erf_d(x):
    return _TWO_OVER_SQRTPI * math.exp(-x * x)


@njit
def _gelu(x):
    return 0.5 * x * (1.0 + math.erf(x * _INV_SQRT2))


@njit
def _gelu_d(x):
    return 0.5 * (1.0 + math.erf(x * _INV_SQRT2)) + x * _INV_SQRT2PI * math.exp(-0.5 * x * x)


@njit
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit
def _sigmoid_d(x):
    s = _sigmoid(x)
    return s * (1.0 - s)


@njit
def _softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@njit
def _swish(x):
    return x * _sigmoid(x)


@njit
def _swish_d(x):
    s = _sigmoid(x)
    return s + x * s * (1.0 - s)


@njit
def _sin(x):
    return math.sin(x)


@njit
def _cos(x):
    return math.cos(x)


@njit
def _neg_sin(x):
    return -math.sin(x)


@njit
def _exp(x):
    return math.exp(x)


ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("linear", _linear, _one),
        Activation("relu", _relu, _relu_d),
        Activation("leaky_relu", _leaky_relu, _leaky_relu_d),
        Activation("tanh", _tanh, _tanh_d),
        Activation("erf", _erf, _erf_d),
        Activation("gelu", _gelu, _gelu_d),
        Activation("sigmoid", _sigmoid, _sigmoid_d),
        Activation("softplus", _softplus, _sigmoid),
        Activation("swish", _swish, _swish_d),
        Activation("sin", _sin, _cos),
        Activation("cos", _cos, _neg_sin),
        Activation("exp", _exp, _exp),
    )
}


def get_activation(activation):
    """Resolve a registry name or an ``Activation`` instance."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(f"unknown activation {activation!r}; known: "
                             f"{', '.join(sorted(ACTIVATIONS))}, or pass nf.Activation") from None
    raise TypeError("activation must be a name or an nf.Activation, "
                    f"got {type(activation).__name__}")
