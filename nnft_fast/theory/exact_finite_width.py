"""Exact finite-width moments of one input through a deep network with Gaussian weights and
a positively homogeneous activation (linear, ReLU, leaky ReLU), no residual connections
(docs/exact-results.md#deep-linear, #deep-relu).

Given layer l - 1, the preactivations of layer l are independent N(0, g_l) with one shared
conditional variance
    g_1 = C_b^(1) + C_W^(1) |x|^2 / n_0,        g_l = C_b^(l) + C_W^(l) S_{l-1},
    S_{l-1} = (1 / n_{l-1}) sum_k sigma(z_k^(l-1))^2,
so z_i^(l) = sqrt(g_l) xi_i with xi_i independent standard normals. For sigma(a u) =
a sigma(u) (a > 0), sigma(z_k)^2 = g sigma(xi_k)^2, and with m2 = E[sigma(xi)^2],
m4 = E[sigma(xi)^4] (linear 1, 3; ReLU 1/2, 3/2; leaky ReLU with slope s (1 + s^2)/2,
3 (1 + s^4)/2) the first two moments of g close layer by layer:
    E[S_l]   = m2 E[g_l],
    E[S_l^2] = (m4 / n_l + (1 - 1/n_l) m2^2) E[g_l^2],
    E[g_{l+1}]   = C_b + C_W E[S_l],
    E[g_{l+1}^2] = C_b^2 + 2 C_b C_W E[S_l] + C_W^2 E[S_l^2].
The moments of one layer follow exactly, at any widths:
    K^(l)              = E[z_i^2]       = E[g_l]
    E[z_i^4]           = 3 E[g_l^2]
    E[z_i^2 z_j^2]     = E[g_l^2]       (i != j)
and the normalised vertex in the package's normalisation (``Ensemble.vertex``: V =
n_{l-1} x the distinct-neuron connected four-point function; ``report.normalised_vertex``
divides by K^2)
    V^(l) / (K^(l))^2 = n_{l-1} (E[g_l^2] / E[g_l]^2 - 1).
Without biases the ratio r_l = E[g_l^2] / E[g_l]^2 is r_1 = 1,
r_{l+1} = r_l (1 + c / n_l) with c = m4 / m2^2 - 1: 2 (linear), 5 (ReLU), so
E[z^4] / E[z^2]^2 = 3 prod_{l' < l} (1 + c / n_{l'}) and
V^(l) / K^2 = n_{l-1} (prod_{l' < l} (1 + c / n_{l'}) - 1), whose leading order in 1/n is
the Roberts-Yaida 2 (l - 1) (linear) and 5 (l - 1) (ReLU) at constant width. K^(l) is the
infinite-width recursion's value (``kernel_recursion``), exactly, at any width.
"""

from dataclasses import dataclass

import numpy as np

from nnft_fast.kernels.cpu.activations import LEAKY_RELU_SLOPE
from nnft_fast.network import _per_layer

# (E[sigma(xi)^2], E[sigma(xi)^4]) for xi ~ N(0, 1), positively homogeneous activations
HOMOGENEOUS_MOMENTS = {
    "linear": (1.0, 3.0),
    "relu": (0.5, 1.5),
    "leaky_relu": ((1.0 + LEAKY_RELU_SLOPE**2) / 2.0, 1.5 * (1.0 + LEAKY_RELU_SLOPE**4)),
}


@dataclass(frozen=True)
class ExactMoments:
    """Exact moments of one input, per layer (index l - 1 holds layer l), module docstring:
    ``kernel`` K^(l) = E[z_i^2], ``same`` E[z_i^4], ``distinct`` E[z_i^2 z_j^2] (i != j);
    ``fan_in`` n_{l-1}."""

    kernel: np.ndarray
    same: np.ndarray
    distinct: np.ndarray
    fan_in: np.ndarray

    @property
    def normalised_vertex(self):
        """V^(l) / (K^(l))^2 = n_{l-1} (E[z_i^2 z_j^2] - K^2) / K^2 per layer."""
        return self.fan_in * (self.distinct / self.kernel**2 - 1.0)

    @property
    def kurtosis(self):
        """E[z_i^4] / E[z_i^2]^2 per layer."""
        return self.same / self.kernel**2


def exact_single_input_moments(widths, activation="relu", cw=2.0, cb=0.0, x=None):
    """``ExactMoments`` of one input x through a network of widths (n_0, ..., n_L) with
    Gaussian weights (variance C_W / n_{l-1}) and biases (variance C_b), activation
    'linear', 'relu' or 'leaky_relu' (module docstring); ``cw``, ``cb`` scalar or one
    value per layer; ``x`` (n_0,) or (1, n_0), default |x|^2 / n_0 = 1."""
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or min(widths) < 1:
        raise ValueError(f"widths must be (n_0, n_1, ..., n_L) with every n >= 1, got {widths}")
    name = getattr(activation, "name", activation)
    if name not in HOMOGENEOUS_MOMENTS:
        raise ValueError(
            f"exact finite-width moments need a positively homogeneous activation "
            f"({', '.join(HOMOGENEOUS_MOMENTS)}), got {name!r}"
        )
    m2, m4 = HOMOGENEOUS_MOMENTS[name]
    n_layers = len(widths) - 1
    cw, cb = _per_layer("cw", cw, n_layers), _per_layer("cb", cb, n_layers)
    if x is None:
        x2 = 1.0
    else:
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.shape != (widths[0],):
            raise ValueError(f"x must hold one input of dimension {widths[0]}")
        x2 = float(x @ x) / widths[0]
    g1 = cb[0] + cw[0] * x2
    g, gg = [g1], [g1 * g1]  # E[g_l], E[g_l^2]
    for layer in range(2, n_layers + 1):
        n = widths[layer - 1]
        s = m2 * g[-1]
        ss = (m4 / n + (1.0 - 1.0 / n) * m2 * m2) * gg[-1]
        c, v = cw[layer - 1], cb[layer - 1]
        g.append(v + c * s)
        gg.append(v * v + 2.0 * v * c * s + c * c * ss)
    g, gg = np.array(g), np.array(gg)
    return ExactMoments(
        kernel=g, same=3.0 * gg, distinct=gg, fan_in=np.array(widths[:-1], dtype=np.float64)
    )


def deep_linear_normalised_vertex(widths, cw=1.0, cb=0.0, x=None):
    """Exact V^(l) / (K^(l))^2 per layer of a deep linear network with Gaussian weights, one
    input (``exact_single_input_moments``); without biases
    n_{l-1} (prod_{l' < l} (1 + 2 / n_{l'}) - 1), independent of x and C_W."""
    return exact_single_input_moments(widths, "linear", cw, cb, x).normalised_vertex


def deep_relu_normalised_vertex(widths, cw=2.0, cb=0.0, x=None):
    """Exact V^(l) / (K^(l))^2 per layer of a deep ReLU network with Gaussian weights, one
    input (``exact_single_input_moments``); without biases
    n_{l-1} (prod_{l' < l} (1 + 5 / n_{l'}) - 1), independent of x and C_W."""
    return exact_single_input_moments(widths, "relu", cw, cb, x).normalised_vertex


def exact_network_moments(network, x):
    """``ExactMoments`` of input x through ``network`` where they are known exactly
    (Gaussian weights, a positively homogeneous activation, no residual connections), else
    None."""
    if (
        network.init != "gaussian"
        or network.is_residual
        or network.activation.name not in HOMOGENEOUS_MOMENTS
        or not network.activation.is_builtin
    ):
        return None
    return exact_single_input_moments(
        network.widths, network.activation.name, network.cw_array, network.cb_array, x
    )
