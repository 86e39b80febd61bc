"""Infinite-width (free theory) recursions for the kernel and the mean NTK.

Kernel, docs/exact-results.md#infinite-width:
    K^(1)_ab     = C_b^(1) + C_W^(1) x_a . x_b / n_0
    K^(l+1)_ab   = C_b^(l+1) + C_W^(l+1) <sigma(z_a) sigma(z_b)>_{K^(l)}
and with a residual connection (docs/conventions.md#residual),
z^(l+1) = xi z^(l) + gamma (b + W sigma(z^(l))):
    K^(l+1)_ab   = xi^2 K^(l)_ab + gamma^2 (C_b^(l+1) + C_W^(l+1) <sigma(z_a) sigma(z_b)>_{K^(l)})
(xi, gamma of layer l+1): the cross term 2 xi gamma E[z_{i;a} (b_i + sum_j W_ij sigma_{j;b})]
vanishes, since W and b are independent of z^(l) and have mean zero, at every width.
Mean NTK with learning rates (lambda_b, lambda_W), docs/conventions.md#ntk normalisation:
    Theta^(1)_ab   = lambda_b + lambda_W x_a . x_b / n_0
    Theta^(l+1)_ab = lambda_b + lambda_W <sigma(z_a) sigma(z_b)>_{K^(l)}
                     + C_W^(l+1) <sigma'(z_a) sigma'(z_b)>_{K^(l)} Theta^(l)_ab
"""

import numpy as np

from nnft_fast.network import Network
from nnft_fast.run import DEFAULT_LAMBDA_B, DEFAULT_LAMBDA_W, validate_inputs

from .gaussian_integrals import DEFAULT_NODES, dsigma_pair, numpy_activation, sigma_pair


def _map_pairs(k, pair_fn):
    """(B, B) matrix of pair_fn(K_aa, K_ab, K_bb), symmetric."""
    nb = k.shape[0]
    out = np.empty_like(k)
    for a in range(nb):
        for b in range(a, nb):
            out[a, b] = out[b, a] = pair_fn(k[a, a], k[a, b], k[b, b])
    return out


def _kernels_and_pairs(network, x, n_nodes):
    """K^(l), l = 1..L, and the <sigma sigma>_{K^(l)}, l = 1..L-1, that build them."""
    act = network.activation
    k = network.cb_array[0] + network.cw_array[0] * (x @ x.T) / network.input_dim
    kernels, pairs = [k], []
    for layer in range(1, network.n_layers):
        pairs.append(_map_pairs(k, lambda a, b, c: sigma_pair(act, a, b, c, n_nodes)))
        plain = network.cb_array[layer] + network.cw_array[layer] * pairs[-1]
        if is_residual_layer(network, layer + 1):
            xi, gamma = network.xi_array[layer], network.gamma_array[layer]
            k = xi * xi * k + gamma * gamma * plain
        else:
            k = plain
        kernels.append(k)
    return kernels, pairs


def is_residual_layer(network, layer):
    """Whether layer ``layer`` (1-based) of ``network`` has xi != 0 or gamma != 1."""
    return network.xi_array[layer - 1] != 0.0 or network.gamma_array[layer - 1] != 1.0


def kernel_recursion(network: Network, X, n_nodes=DEFAULT_NODES):
    """Infinite-width K^(l) for l = 1..L: list of (B, B) arrays.

    <sigma sigma> is exact for linear, relu, leaky_relu, erf, sin, cos, exp
    (``gaussian_integrals.closed_form_pair``), otherwise ``quadrature_pair`` with
    resolution n_nodes (1e-13 or better for the smooth built-ins at the default).
    """
    return _kernels_and_pairs(network, validate_inputs(network, X), n_nodes)[0]


def ntk_recursion(
    network: Network, X, lambda_b=DEFAULT_LAMBDA_B, lambda_w=DEFAULT_LAMBDA_W, n_nodes=DEFAULT_NODES
):
    """Infinite-width mean NTK Theta^(l) for l = 1..L: list of (B, B) arrays.

    lambda_b, lambda_w: scalars (the same learning rates for every layer).
    <sigma' sigma'> is exact where ``gaussian_integrals.closed_form_dpair`` has a closed
    form (linear, relu, leaky_relu, erf, sin, cos, exp), otherwise as in kernel_recursion.

    Residual layers (docs/conventions.md#residual), z^(l) = xi z^(l-1) + gamma (b + W s):
        Theta^(l)_ab = xi^2 Theta^(l-1)_ab + gamma^2 [lambda_b + lambda_W <sigma sigma>
                       + C_W^(l) <sigma' sigma'> Theta^(l-1)_ab]
    (xi, gamma of layer l; the averages over K^(l-1), the residual kernel). Layer l's
    parameters enter z^(l) times gamma, and dz^(l)/dz^(l-1) = xi I + gamma W diag(sigma'),
    so H^(l)_ij = gamma^2 (lambda_b + lambda_W Gs) delta_ij + xi^2 H^(l-1)_ij
    + xi gamma sum_k (W_jk sigma'_k H^(l-1)_ik + W_ik sigma'_k H^(l-1)_kj)
    + gamma^2 sum_kk' W_ik W_jk' sigma'_k sigma'_k' H^(l-1)_kk'; W = W^(l) is independent
    of layer l - 1 with mean zero, so the cross terms vanish in expectation (at any width)
    and the last term averages to C_W <sigma' sigma'> Theta at infinite width.
    """
    x = validate_inputs(network, X)
    act = network.activation
    kernels, pairs = _kernels_and_pairs(network, x, n_nodes)
    theta = lambda_b + lambda_w * (x @ x.T) / network.input_dim
    thetas = [theta]
    for layer in range(1, network.n_layers):
        dpair = _map_pairs(kernels[layer - 1], lambda a, b, c: dsigma_pair(act, a, b, c, n_nodes))
        plain = lambda_b + lambda_w * pairs[layer - 1] + network.cw_array[layer] * dpair * theta
        if is_residual_layer(network, layer + 1):
            xi, gamma = network.xi_array[layer], network.gamma_array[layer]
            theta = xi * xi * theta + gamma * gamma * plain
        else:
            theta = plain
        thetas.append(theta)
    return thetas


__all__ = ["is_residual_layer", "kernel_recursion", "ntk_recursion", "numpy_activation"]
