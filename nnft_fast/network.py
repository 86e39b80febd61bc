"""Network specification and its validation (conventions: docs/conventions.md#network)."""

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field

import numpy as np

from nnft_fast.kernels.cpu.codes import INIT_CODES

from .activations import Activation, get_activation

INITS = tuple(INIT_CODES)
DEFAULT_ACTIVATION = "relu"
DEFAULT_INIT = "gaussian"
DEFAULT_CW = 1.0
DEFAULT_CB = 0.0
DEFAULT_XI = 0.0  # residual connections (docs/conventions.md#residual): none by default
DEFAULT_GAMMA = 1.0
# Laws for which the projected sampler (docs/projected-sampler.md) is exact (rotation invariant).
PROJECTABLE_INITS = ("gaussian", "orthogonal")


def _number(name, value):
    """One variance as a float: a real number (not a bool, a string, None, a complex or a
    timedelta); an integer beyond the float range is not finite (ValueError)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got bool")
    if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(
        value, np.timedelta64
    ):
        raise TypeError(
            f"{name} must be a number or a sequence of numbers, got {type(value).__name__}"
        )
    try:
        return float(value)
    except OverflowError:
        raise ValueError(
            f"{name} must be finite, got an integer of {int(value).bit_length()} "
            "bits (beyond the float range)"
        ) from None


def _per_layer(name, value, n_layers, nonnegative=True):
    """Scalar or length-L sequence -> float64 array of length L, validated (bools, alone
    or inside a sequence or array, are refused: a variance is not a truth value; so are
    strings, None and complex numbers, alone or inside); negative values are refused
    unless ``nonnegative`` is False (the residual coefficients xi, gamma)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if np.isscalar(value) or value is None:
        arr = np.full(n_layers, _number(name, value))
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError):  # ragged nesting
            raise TypeError(f"{name} must be a number or a sequence of numbers") from None
        if arr.ndim == 0:  # a mapping, a set, any other object
            raise TypeError(
                f"{name} must be a number or a sequence of numbers, got {type(value).__name__}"
            )
        if arr.ndim != 1 or arr.size != n_layers:
            raise ValueError(
                f"{name} must be a scalar or have one value per layer "
                f"({n_layers}), got shape {arr.shape}"
            )
        if arr.dtype.kind == "b" or any(isinstance(v, (bool, np.bool_)) for v in value):
            raise TypeError(
                f"{name} must be a number or a sequence of numbers, got a sequence with bools"
            )
        if arr.dtype.kind == "O":  # mixed or huge Python numbers, None, ...
            arr = np.array([_number(name, v) for v in arr], dtype=np.float64)
        elif arr.dtype.kind in "iuf":
            arr = arr.astype(np.float64)
        else:  # strings, complex, dates, records
            raise TypeError(
                f"{name} must be a number or a sequence of numbers, got {arr.dtype} values"
            )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    if nonnegative and np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {arr.tolist()}")
    return arr


def residual_layers(widths):
    """The layers l >= 2 that can carry a residual connection: n_l = n_{l-1}."""
    return tuple(l for l in range(2, len(widths)) if widths[l] == widths[l - 1])


def _residual(name, value, widths, plain):
    """xi or gamma as a float64 array of length L: a scalar applies to every residual
    layer (``residual_layers``) and ``plain`` (xi = 0, gamma = 1) to the others; a
    per-layer sequence must hold ``plain`` at the layers without a residual connection
    (layer 1, and every layer that changes the width)."""
    n_layers = len(widths) - 1
    scalar = (
        np.isscalar(value) or value is None or (isinstance(value, np.ndarray) and value.ndim == 0)
    )
    arr = _per_layer(name, value, n_layers, nonnegative=False)
    allowed = residual_layers(widths)
    if scalar:
        return np.array([arr[l - 1] if l in allowed else plain for l in range(1, n_layers + 1)])
    for l in range(1, n_layers + 1):
        if l not in allowed and arr[l - 1] != plain:
            why = (
                "layer 1 has no residual connection (z^(1) = b + W x)"
                if l == 1
                else f"layer {l} changes the width ({widths[l - 1]} -> {widths[l]}), so it "
                "has no residual connection"
            )
            raise ValueError(
                f"{name}[{l - 1}] = {float(arr[l - 1])!r}: {why}; {name} must be {plain} there"
            )
    return arr


@dataclass(frozen=True)
class Network:
    """A random fully connected network: widths (n_0, ..., n_L), activation, weight law.

    Parameters
    ----------
    widths : sequence of int, n_0 (input dimension) then the L layer widths.
    activation : registry name (see ``nf.ACTIVATIONS``) or ``nf.Activation``.
    init : "gaussian" | "orthogonal" | "uniform"; entry variance cw_l / n_{l-1} for all.
    cw, cb : weight and bias variances, a scalar or one value per layer (length L).
    xi, gamma : residual connections (docs/conventions.md#residual): at the layers
        l >= 2 with n_l = n_{l-1}, z^(l) = xi_l z^(l-1) + gamma_l (b^(l) + W^(l)
        sigma(z^(l-1))). Finite reals; a scalar applies to all those layers, a sequence
        (length L) gives one value per layer and must hold xi = 0, gamma = 1 at the
        others (layer 1, layers that change the width). Defaults xi = 0, gamma = 1: no
        residual connections.
    """

    widths: tuple[int, ...]
    activation: str | Activation = DEFAULT_ACTIVATION
    init: str = DEFAULT_INIT
    cw: float | Sequence[float] = DEFAULT_CW
    cb: float | Sequence[float] = DEFAULT_CB
    xi: float | Sequence[float] = DEFAULT_XI
    gamma: float | Sequence[float] = DEFAULT_GAMMA
    cw_array: np.ndarray = field(init=False, repr=False, compare=False)
    cb_array: np.ndarray = field(init=False, repr=False, compare=False)
    xi_array: np.ndarray = field(init=False, repr=False, compare=False)
    gamma_array: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        widths = self.widths
        if (
            isinstance(widths, (str, bytes, Mapping, Set))  # no order, or not integers
            or not hasattr(widths, "__len__")
        ):
            raise TypeError("widths must be a sequence of integers (n_0, n_1, ..., n_L)")
        if len(widths) < 2:
            raise ValueError(
                f"widths needs the input dimension and at least one layer, got {tuple(widths)}"
            )
        for w in widths:
            if isinstance(w, (bool, np.bool_, np.timedelta64)) or not isinstance(
                w, (int, np.integer)
            ):
                raise TypeError(f"widths must be integers, got {w!r}")
            if w < 1:
                raise ValueError(f"every width must be >= 1, got {tuple(widths)}")
        object.__setattr__(self, "widths", tuple(int(w) for w in widths))
        object.__setattr__(self, "activation", get_activation(self.activation))
        if not isinstance(self.init, str):
            raise TypeError(f"init must be a string, got {type(self.init).__name__}")
        if self.init not in INITS:
            raise ValueError(f"unknown init {self.init!r}; choose one of {INITS}")
        object.__setattr__(self, "cw_array", _per_layer("cw", self.cw, self.n_layers))
        object.__setattr__(self, "cb_array", _per_layer("cb", self.cb, self.n_layers))
        object.__setattr__(self, "xi_array", _residual("xi", self.xi, self.widths, DEFAULT_XI))
        object.__setattr__(
            self, "gamma_array", _residual("gamma", self.gamma, self.widths, DEFAULT_GAMMA)
        )

    @property
    def n_layers(self):
        """L, the number of layers with weights."""
        return len(self.widths) - 1

    @property
    def input_dim(self):
        return self.widths[0]

    @property
    def init_code(self):
        return INIT_CODES[self.init]

    @property
    def is_residual(self):
        """Whether some layer has a residual connection or a gamma != 1."""
        return bool(
            np.any(self.xi_array != DEFAULT_XI) or np.any(self.gamma_array != DEFAULT_GAMMA)
        )

    def config(self):
        """Plain-Python description (for stores and reports); xi and gamma only for a
        residual network, so the description of any other network is what it always was."""
        config = {
            "widths": list(self.widths),
            "activation": self.activation.name,
            "init": self.init,
            "cw": self.cw_array.tolist(),
            "cb": self.cb_array.tolist(),
        }
        if self.is_residual:
            config["xi"] = self.xi_array.tolist()
            config["gamma"] = self.gamma_array.tolist()
        return config

    def __hash__(self):
        return hash(
            (
                self.widths,
                self.activation.name,
                self.init,
                tuple(self.cw_array),
                tuple(self.cb_array),
                tuple(self.xi_array),
                tuple(self.gamma_array),
            )
        )

    def __eq__(self, other):
        return (
            isinstance(other, Network)
            and self.config() == other.config()
            and self.activation == other.activation
        )


__all__ = ["Network", "Activation", "INITS", "PROJECTABLE_INITS", "residual_layers"]
