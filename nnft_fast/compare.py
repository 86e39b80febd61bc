"""Measured ensembles against theory: per-layer z-scores and a Markdown table.

``predict(network, X, lambda_b, lambda_w)`` gathers the package's predictions for a network
on inputs X: the infinite-width kernel K^(l) (``theory.kernel_recursion``), for Gaussian or
Haar weights the leading-order vertex V^(l) = n_{l-1} x (distinct-neuron connected
four-point function) (``theory.vertex_recursion``), the infinite-width mean NTK Theta^(l)
(``theory.ntk_recursion``) and, for Gaussian or Haar weights, the leading-order NTK fluctuations
A, B, D, F (``theory.ntk_fluctuation_recursion``, the normalisation of
``Ensemble.ntk_fluctuations``). ``compare(ensemble)`` sets them beside the measured K, V
and, for ensembles with NTK statistics, Theta, A, B, D, F, with
z = (measured - predicted) / (jackknife error), entry by entry.

All predictions are leading order: K and Theta have O(1/n) corrections for non-linear
activations and V, A, B, D, F have O(1/n) corrections (the four-point functions O(1/n^2)),
which a large ensemble resolves -- a growing |z| with depth at fixed width is physics, not
a bug. Layer 2 of Gaussian weights is exact at any width for all of them (not for Haar
weights, whose first layer is not Gaussian).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .run import DEFAULT_LAMBDA_B, DEFAULT_LAMBDA_W
from .theory import kernel_recursion, ntk_fluctuation_recursion, ntk_recursion, vertex_recursion

if TYPE_CHECKING:
    from collections.abc import Iterable

    from numpy.typing import ArrayLike

    from .ensemble import Ensemble
    from .network import Network

VERTEX_INITS = ("gaussian", "orthogonal")
NTK_FLUCTUATIONS = ("A", "B", "D", "F")


@dataclass
class Prediction:
    """Per-layer predictions (index l - 1 holds layer l); ``vertices`` None when the
    weight law has no vertex recursion here, ``ntk_fluctuations`` None when it has no
    NTK-fluctuation recursion (each entry a ``theory.PredictedNTKFluctuations``);
    ``lambda_b``, ``lambda_w`` the learning rates of ``ntk`` and ``ntk_fluctuations``."""

    kernels: list
    vertices: list = None
    ntk: list = None
    ntk_fluctuations: list = None
    lambda_b: float = None
    lambda_w: float = None


def predict(
    network: Network,
    X: ArrayLike,
    lambda_b: float = DEFAULT_LAMBDA_B,
    lambda_w: float = DEFAULT_LAMBDA_W,
) -> Prediction:
    """The package's leading-order predictions for ``network`` on the inputs X.

    Parameters
    ----------
    network : Network
        The architecture; its weight law decides which predictions exist.
    X : array_like, shape (B, n_0)
        The inputs, one per row.
    lambda_b, lambda_w : float, default 1.0
        The NTK learning rates (docs/conventions.md#ntk), as passed to ``nf.sample``.

    Returns
    -------
    Prediction
        ``kernels``: the infinite-width kernel K^(l) (B, B) of every layer
        (``theory.kernel_recursion``); ``vertices``: for Gaussian and orthogonal weights the
        leading-order vertex V^(l) (B, B, B, B) of every layer
        (``theory.vertex_recursion``, docs/conventions.md#vertex), else None; ``ntk``: the
        infinite-width mean NTK Theta^(l) (B, B) (``theory.ntk_recursion``, every weight
        law); ``ntk_fluctuations``: for Gaussian and orthogonal weights the leading-order
        A, B, D, F (B, B, B, B) of every layer in the normalisation of
        ``Ensemble.ntk_fluctuations`` (``theory.ntk_fluctuation_recursion``), else None;
        ``ntk_fluctuations`` is None for residual networks (no fluctuation recursion with
        residual connections yet). Index l - 1 holds layer l.
    """
    lambda_b, lambda_w = float(lambda_b), float(lambda_w)
    if network.is_residual:  # the fluctuation recursion does not cover residual connections
        thetas = ntk_recursion(network, X, lambda_b, lambda_w)
        if network.init in VERTEX_INITS:
            return Prediction(*vertex_recursion(network, X), thetas, None, lambda_b, lambda_w)
        return Prediction(kernel_recursion(network, X), None, thetas, None, lambda_b, lambda_w)
    if network.init in VERTEX_INITS:
        theory = ntk_fluctuation_recursion(network, X, lambda_b, lambda_w)
        return Prediction(
            theory.kernels, theory.vertices, theory.ntk, theory.fluctuations, lambda_b, lambda_w
        )
    thetas = ntk_recursion(network, X, lambda_b, lambda_w)
    return Prediction(kernel_recursion(network, X), None, thetas, None, lambda_b, lambda_w)


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


def _zscores(estimate, predicted, scale=None):
    """(measured - predicted) / error; where the error is 0 to rounding (a quantity every
    network gives exactly, e.g. K^(1) of Haar weights on one input) z is 0 if the values
    agree to rounding and infinite otherwise. ``scale``: the size rounding is judged
    against (default max |predicted|; a prediction of exactly 0 needs one)."""
    diff = estimate.value - predicted
    if scale is None:
        scale = np.max(np.abs(predicted))
    scale = max(float(scale), 1e-300)
    exact = np.abs(diff) <= 1e-10 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(
            estimate.error > 1e-13 * scale,
            diff / estimate.error,
            np.where(exact, 0.0, np.copysign(np.inf, diff)),
        )


def _row(observable, layer, estimate, predicted, scale=None):
    predicted = np.asarray(predicted, dtype=np.float64)
    z = _zscores(estimate, predicted, scale)
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


def _check_lengths(prediction, n_layers):
    for name in ("kernels", "vertices", "ntk", "ntk_fluctuations"):
        values = getattr(prediction, name)
        if values is not None and len(values) != n_layers:
            raise ValueError(
                f"prediction covers {len(values)} layers ({name}), the ensemble's "
                f"network has {n_layers}"
            )


def _ntk_candidates(ensemble, prediction, layer):
    """(observable, Estimate, predicted, scale) rows of the NTK mean and fluctuations."""
    theta = ensemble.ntk(layer)
    out = [("ntk", theta, prediction.ntk[layer - 1], None)]
    if prediction.ntk_fluctuations is not None:
        measured = ensemble.ntk_fluctuations(layer)
        predicted = prediction.ntk_fluctuations[layer - 1]
        # A, B, F of layer 1 are 0 in every network: rounding judged against n Theta^2
        scale = ensemble.network.widths[layer - 1] * np.max(np.abs(prediction.ntk[layer - 1])) ** 2
        for name in NTK_FLUCTUATIONS:
            out.append((f"ntk_{name}", getattr(measured, name), getattr(predicted, name), scale))
    return out


def compare(
    ensemble: Ensemble, prediction: Prediction | None = None, layers: Iterable[int] | None = None
) -> Comparison:
    """z-scores of the measured two-point function and vertex, and of the NTK mean and
    fluctuations A, B, D, F when the ensemble has NTK statistics (observables "ntk",
    "ntk_A", ..., "ntk_F"), against ``prediction`` (default: ``predict(ensemble.network,
    ensemble.inputs)`` at the ensemble's learning rates), for the ensemble's layers (or
    ``layers``). Returns a Comparison; print it for the Markdown table."""
    has_ntk = getattr(ensemble, "has_ntk", False)
    rates = {}
    if has_ntk:
        acc = ensemble.ntk_accumulator
        rates = {"lambda_b": acc.lambda_b, "lambda_w": acc.lambda_w}
    if prediction is None:
        prediction = predict(ensemble.network, ensemble.inputs, **rates)
    if not isinstance(prediction, Prediction):
        raise TypeError(f"prediction must be a Prediction, got {type(prediction).__name__}")
    _check_lengths(prediction, ensemble.network.n_layers)
    use_ntk = has_ntk and prediction.ntk is not None
    if use_ntk and (prediction.lambda_b, prediction.lambda_w) != (
        rates["lambda_b"],
        rates["lambda_w"],
    ):
        raise ValueError(
            f"prediction made at lambda_b = {prediction.lambda_b}, lambda_w = "
            f"{prediction.lambda_w}; the ensemble's NTK has lambda_b = {rates['lambda_b']}, "
            f"lambda_w = {rates['lambda_w']}"
        )
    layers = list(ensemble.accumulator.layers) if layers is None else list(layers)
    result = Comparison()
    for layer in layers:
        candidates = [("two_point", ensemble.two_point(layer), prediction.kernels[layer - 1], None)]
        if ensemble.has_four_point and prediction.vertices is not None:
            candidates.append(
                ("vertex", ensemble.vertex(layer), prediction.vertices[layer - 1], None)
            )
        if use_ntk:
            candidates += _ntk_candidates(ensemble, prediction, layer)
        for name, estimate, values, scale in candidates:
            row, z = _row(name, layer, estimate, values, scale)
            result.rows.append(row)
            result.zscores[name, layer] = z
    return result


__all__ = ["Comparison", "ComparisonRow", "Prediction", "compare", "predict"]
