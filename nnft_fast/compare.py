"""Measured ensembles against theory: per-layer z-scores and a Markdown table.

``predict(network, X)`` gathers the package's predictions for a network on inputs X:
the infinite-width kernel K^(l) (``theory.kernel_recursion``) and, for Gaussian or Haar
weights, the leading-order vertex V^(l) = n_{l-1} x (distinct-neuron connected four-point
function) (``theory.vertex_recursion``). ``compare(ensemble)`` sets them beside the
measured K and V with z = (measured - predicted) / (jackknife error), entry by entry.

Both predictions are leading order: K has O(1/n) corrections for non-linear activations
and V has O(1/n) corrections (the four-point function O(1/n^2)), which a large ensemble
resolves -- a growing |z| with depth at fixed width is physics, not a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .theory import kernel_recursion, vertex_recursion

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import ArrayLike

    from .ensemble import Ensemble
    from .network import Network

VERTEX_INITS = ("gaussian", "orthogonal")


@dataclass
class Prediction:
    """Per-layer predictions (index l - 1 holds layer l); ``vertices`` None when the
    weight law has no vertex recursion here."""

    kernels: list
    vertices: list = None


def predict(network: Network, X: ArrayLike) -> Prediction:
    """The package's leading-order predictions for ``network`` on the inputs X.

    Parameters
    ----------
    network : Network
        The architecture; its weight law decides which predictions exist.
    X : array_like, shape (B, n_0)
        The inputs, one per row.

    Returns
    -------
    Prediction
        ``kernels``: the infinite-width kernel K^(l) (B, B) of every layer
        (``theory.kernel_recursion``); ``vertices``: for Gaussian and orthogonal weights the
        leading-order vertex V^(l) (B, B, B, B) of every layer
        (``theory.vertex_recursion``, docs/conventions.md#vertex), else None. Index
        l - 1 holds layer l.
    """
    if network.init in VERTEX_INITS:
        kernels, vertices = vertex_recursion(network, X)
        return Prediction(kernels, vertices)
    return Prediction(kernel_recursion(network, X))


@dataclass
class ComparisonRow:
    """One layer and observable: the entry with the largest |z|."""

    layer: int
    observable: str
    max_abs_z: float
    index: tuple
    measured: float
    error: float
    predicted: float


@dataclass
class Comparison:
    rows: list = field(default_factory=list)
    zscores: dict = field(default_factory=dict)  # (observable, layer) -> z array

    def max_abs_z(self, observable=None):
        """Largest |z| over all rows (of one observable if given)."""
        return max(
            r.max_abs_z for r in self.rows if observable is None or r.observable == observable
        )

    def table(self):
        lines = [
            "| layer | observable | max abs z | at entry | measured | predicted |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.layer} | {r.observable} | {r.max_abs_z:.2f} | "
                f"{r.index} | {r.measured:.6g} ± {r.error:.2g} | {r.predicted:.6g} |"
            )
        return "\n".join(lines)

    __str__ = table


def _zscores(estimate, predicted):
    """(measured - predicted) / error; where the error is 0 to rounding (a quantity every
    network gives exactly, e.g. K^(1) of Haar weights on one input) z is 0 if the values
    agree to rounding and infinite otherwise."""
    diff = estimate.value - predicted
    scale = max(np.max(np.abs(predicted)), 1e-300)
    exact = np.abs(diff) <= 1e-10 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            estimate.error > 1e-13 * scale,
            diff / estimate.error,
            np.where(exact, 0.0, np.copysign(np.inf, diff)),
        )


def _row(observable, layer, estimate, predicted):
    predicted = np.asarray(predicted, dtype=np.float64)
    z = _zscores(estimate, predicted)
    index = np.unravel_index(int(np.argmax(np.abs(z))), z.shape)
    row = ComparisonRow(
        layer,
        observable,
        float(np.abs(z)[index]),
        tuple(int(i) for i in index),
        float(estimate.value[index]),
        float(estimate.error[index]),
        float(predicted[index]),
    )
    return row, z


def compare(
    ensemble: Ensemble, prediction: Prediction | None = None, layers: Iterable[int] | None = None
) -> Comparison:
    """z-scores of the measured two-point function and vertex against ``prediction``
    (default: ``predict(ensemble.network, ensemble.inputs)``), for the ensemble's layers
    (or ``layers``). Returns a Comparison; print it for the Markdown table."""
    if prediction is None:
        prediction = predict(ensemble.network, ensemble.inputs)
    if not isinstance(prediction, Prediction):
        raise TypeError(f"prediction must be a Prediction, got {type(prediction).__name__}")
    n_layers = ensemble.network.n_layers
    if len(prediction.kernels) != n_layers or (
        prediction.vertices is not None and len(prediction.vertices) != n_layers
    ):
        raise ValueError(
            f"prediction covers {len(prediction.kernels)} layers, the ensemble's "
            f"network has {n_layers}"
        )
    layers = list(ensemble.accumulator.layers) if layers is None else list(layers)
    result = Comparison()
    for layer in layers:
        candidates = [("two_point", ensemble.two_point, prediction.kernels)]
        if ensemble.has_four_point and prediction.vertices is not None:
            candidates.append(("vertex", ensemble.vertex, prediction.vertices))
        for name, measure, values in candidates:
            row, z = _row(name, layer, measure(layer), values[layer - 1])
            result.rows.append(row)
            result.zscores[name, layer] = z
    return result


__all__ = ["Comparison", "ComparisonRow", "Prediction", "compare", "predict"]
