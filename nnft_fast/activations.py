"""Activation registry: name -> ``Activation`` (scalar Numba function and derivative).

Built-ins (``ACTIVATIONS``) run through one compiled switch in the kernels
(``kernels.cpu.activations``), so they share one cached compilation. A user activation
``Activation("mine", fn, dfn)`` takes any Numba-compilable scalar ``fn``/``dfn``; the
kernels are specialised to it on first use. Both are tried at 0.5 when the Activation is
made (TypeError if they do not compile, ValueError if they raise); an exception raised
later inside the kernels is reported by the sampler as a ValueError naming the
activation.
"""

from collections.abc import Callable
from dataclasses import dataclass

from numba import njit
from numba.core.errors import NumbaError
from numba.core.registry import CPUDispatcher

from nnft_fast.kernels.cpu.activations import LEAKY_RELU_SLOPE, activate, activate_derivative
from nnft_fast.kernels.cpu.codes import ACTIVATION_NAMES

USER_CODE = -1


@dataclass(frozen=True)
class Activation:
    """A named scalar activation sigma(x) with its derivative sigma'(x).

    ``code`` >= 0 marks a built-in (an index into the kernels' switch); user
    activations leave it at -1.
    """

    name: str
    fn: Callable
    dfn: Callable
    code: int = USER_CODE

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("Activation name must be a non-empty string")
        for label, f in (("fn", self.fn), ("dfn", self.dfn)):
            if not callable(f):
                raise TypeError(f"Activation {label} must be callable, got {type(f).__name__}")
        if self.code != USER_CODE:
            return
        object.__setattr__(self, "fn", _as_njit(self.fn))
        object.__setattr__(self, "dfn", _as_njit(self.dfn))
        for label, f in (("fn", self.fn), ("dfn", self.dfn)):
            try:
                value = f(0.5)
            except NumbaError as exc:  # typing or lowering failed
                raise TypeError(
                    f"Activation {self.name!r}: {label} is not Numba-compilable "
                    f"for a float argument: {exc}"
                ) from exc
            except Exception as exc:  # compiled, but raised when called
                raise ValueError(
                    f"Activation {self.name!r}: {label}(0.5) raised {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(value, float):
                raise TypeError(
                    f"Activation {self.name!r}: {label}(0.5) must return a float, "
                    f"got {type(value).__name__}"
                )

    @property
    def is_builtin(self):
        return self.code != USER_CODE


def _as_njit(f):
    return f if isinstance(f, CPUDispatcher) else njit(f)


def _builtin(code):
    @njit
    def fn(x):
        return activate(code, x)

    @njit
    def dfn(x):
        return activate_derivative(code, x)

    return Activation(ACTIVATION_NAMES[code], fn, dfn, code)


ACTIVATIONS = {name: _builtin(code) for code, name in enumerate(ACTIVATION_NAMES)}


def get_activation(activation):
    """Resolve a registry name or an ``Activation`` instance."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation]
        except KeyError:
            raise ValueError(
                f"unknown activation {activation!r}; known: "
                f"{', '.join(sorted(ACTIVATIONS))}, or pass nf.Activation"
            ) from None
    raise TypeError(
        f"activation must be a name or an nf.Activation, got {type(activation).__name__}"
    )


__all__ = ["Activation", "ACTIVATIONS", "LEAKY_RELU_SLOPE", "get_activation"]
