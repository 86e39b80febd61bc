"""Susceptibilities measured from an ensemble (Roberts & Yaida ch. 5), with their
infinite-width predictions (``theory.criticality.susceptibilities``).

chi_par and chi_perp say how a small change of the input grows or shrinks from layer
l - 1 to layer l. Both are measured as ratios of two-point functions of two *probe
inputs*, input 0 and a nearby input b, at consecutive layers, with a delete-one-block
jackknife over the ratio (both layers' moments come from the same blocks of networks):

* chi_par, dK^(l)/dK^(l-1) along the norm: x_b = s x_0 with s != 1 close to 1;
  chi_par^(l) = (K^(l)_bb - K^(l)_00) / (K^(l-1)_bb - K^(l-1)_00);
* chi_perp, the growth of the perpendicular distance: |x_b| = |x_0|, x_b close to x_0;
  with delta_perp^(l) = K^(l)_00 + K^(l)_bb - 2 K^(l)_0b (the mean squared distance
  (1/n) sum_i (z_i;0 - z_i;b)^2, 4 delta-delta K in RY's notation),
  chi_perp^(l) = delta_perp^(l) / delta_perp^(l-1).

"Close" means |x_b - x_0| <= PROBE_MAX_DISTANCE |x_0|; parallel and equal norms are
judged to PROBE_RTOL. Only such pairs with input 0 are used (the first b that qualifies),
so a run's inputs decide what is measurable: without a probe the measured value is None.
The ratios are finite differences: at infinite width they equal the derivatives of the
kernel map at K^(l-1)_00 up to O(|x_b - x_0| / |x_0|) (for ReLU with C_b = 0 chi_par is
exact: z_b = s z_0 in every network); at finite width they carry the O(1/n) corrections
of the measured kernels. The prediction ``predicted_susceptibilities`` is the
infinite-width formula evaluated at the *measured* kernel of layer l - 1.
"""

from dataclasses import dataclass

import numpy as np

from .accumulators import jackknife_error
from .ensemble import Estimate
from .theory.criticality import susceptibilities

PROBE_MAX_DISTANCE = 0.1  # |x_b - x_0| / |x_0| of a probe pair, at most
PROBE_RTOL = 1e-9  # parallel (residual off the line of x_0), equal norms: relative to |x_0|


@dataclass(frozen=True)
class Probes:
    """The probe inputs of a run: ``parallel`` (x_b = s x_0) and ``perpendicular``
    (|x_b| = |x_0|), the index b of each or None, and ``parallel_step`` = s - 1 and
    ``perpendicular_step`` = |x_b - x_0| / |x_0| (NaN without a probe)."""

    parallel: int = None
    perpendicular: int = None
    parallel_step: float = float("nan")
    perpendicular_step: float = float("nan")


def find_probes(inputs):
    """The ``Probes`` of the inputs (B, n_0): the first inputs b >= 1 that are a parallel
    and a same-norm probe of input 0 (module docstring)."""
    x = np.asarray(inputs, np.float64)
    norm = float(np.linalg.norm(x[0]))
    found = {}
    if norm == 0.0:
        return Probes()
    for b in range(1, x.shape[0]):
        distance = float(np.linalg.norm(x[b] - x[0])) / norm
        if not 0.0 < distance <= PROBE_MAX_DISTANCE:
            continue
        s = float(np.dot(x[b], x[0])) / norm**2
        if "parallel" not in found and np.linalg.norm(x[b] - s * x[0]) <= PROBE_RTOL * norm:
            found["parallel"], found["parallel_step"] = b, s - 1.0
        elif "perpendicular" not in found and (
            abs(float(np.linalg.norm(x[b])) - norm) <= PROBE_RTOL * norm
        ):
            found["perpendicular"], found["perpendicular_step"] = b, distance
    return Probes(**found)


def layer_ratio(ens, layer, statistic):
    """Estimate of statistic(K^(layer)) / statistic(K^(layer-1)), ``statistic`` a function
    of the two-point tensor (..., B, B) (leading replica axes: index with ``...``),
    with the jackknife error over the ratio."""
    if not 2 <= layer <= ens.n_layers:
        raise ValueError(f"a ratio of layers needs 2 <= layer <= {ens.n_layers}, got {layer}")
    acc = ens.accumulator
    (top, top_replicas), (bottom, bottom_replicas) = (
        acc.layer_with_jackknife(l) for l in (layer, layer - 1)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        value = statistic(top.two_point) / statistic(bottom.two_point)
        replicas = statistic(top_replicas.two_point) / statistic(bottom_replicas.two_point)
        error = jackknife_error(np.asarray(replicas)[:, None])[0]
    return Estimate(np.float64(value), np.float64(error))


def measured_susceptibilities(ens, layer, probes=None):
    """(chi_par, chi_perp) measured from ``layer - 1`` to ``layer``: an Estimate each, or
    None where the inputs hold no probe of that kind (``find_probes``; module
    docstring)."""
    probes = find_probes(ens.inputs) if probes is None else probes
    b = probes.parallel
    par = None if b is None else layer_ratio(ens, layer, lambda k: k[..., b, b] - k[..., 0, 0])
    c = probes.perpendicular
    perp = (
        None
        if c is None
        else layer_ratio(ens, layer, lambda k: k[..., 0, 0] + k[..., c, c] - 2.0 * k[..., 0, c])
    )
    return par, perp


def predicted_susceptibilities(ens, layer, probes=None):
    """(chi_par, chi_perp) of ``theory.criticality.susceptibilities`` for layer ``layer``
    (its C_W, and its xi, gamma) at the measured kernel of layer - 1: K^(layer-1)_00 of
    input 0, and for chi_par with a parallel probe b the midpoint (K_00 + K_bb) / 2 (the
    point where the measured finite difference is second-order accurate); (NaN, NaN) for
    layer 1 (no kernel feeds it)."""
    if layer < 2:
        return float("nan"), float("nan")
    probes = find_probes(ens.inputs) if probes is None else probes
    net, i = ens.network, layer - 1
    k = ens.two_point(layer - 1).value
    b = probes.parallel
    at = (float(k[0, 0]) if b is None else 0.5 * float(k[0, 0] + k[b, b]), float(k[0, 0]))
    coefficients = (float(net.cb_array[i]), float(net.cw_array[i]))
    residual = {"xi": float(net.xi_array[i]), "gamma": float(net.gamma_array[i])}
    par = susceptibilities(net.activation, *coefficients, at[0], **residual)[0]
    perp = susceptibilities(net.activation, *coefficients, at[1], **residual)[1]
    return par, perp
