"""Deformations (nnft_fast.deformations): the interaction of one network, s = S_int /
coupling, and the streaming reweighted block sums.

    s = sum_q W_q sum_i V(phi_i(y_q)) + A(parameters)

with (y_q, W_q) a Gauss-Legendre tensor rule on the box (nnft_fast.quadrature), phi_i the
outputs (a cos-net's, or an MLP's last layer), V the local potential (phi^4 / 4! built in,
or a user's @njit function) and A a user's @njit action of the network's parameters (none
built in): A(omega, beta, amp) for a cos-net, sum_l A(l, W^(l), b^(l)) for an MLP (its
dense weights, drawn again from their streams). The field on the nodes is computed by the
same kernels as on the points, so the local part costs the field on Q more points. User
functions are bound by re-jitting the call path (``specialise``).
"""

import math

from numba import njit, prange

from .codes import PARAMETER_ACTION_NONE, POTENTIAL_NONE, POTENTIAL_PHI4
from .config import FASTMATH
from .forward import draw_dense_weights
from .rng import PURPOSE_BIAS, fill_normal, stream_id

_INV_24 = 1.0 / 24.0


@njit(fastmath=FASTMATH, cache=True, inline="always")
def local_potential(code, phi):
    """V(phi) of the built-in potentials (user potentials replace this function)."""
    if code == POTENTIAL_PHI4:
        phi2 = phi * phi
        return phi2 * phi2 * _INV_24
    return 0.0


@njit(fastmath=FASTMATH, cache=True, inline="always")
def parameter_action(code, omega, beta, amp):
    """A(omega, beta, amp) of a cos-net for the built-in parameter actions: none (user
    actions replace this function)."""
    return 0.0


@njit(fastmath=FASTMATH, cache=True, inline="always")
def layer_action(code, layer, w, b):
    """A(layer, W, b) of one MLP layer for the built-in parameter actions: none (user
    actions replace this function)."""
    return 0.0


@njit(fastmath=FASTMATH, cache=True)
def node_integral(code, weights, phit_nodes):
    """sum_q W_q sum_i V(phi_i(y_q)) of the outputs phit_nodes (Q, n_out) on the nodes."""
    acc = 0.0
    for q in range(weights.size):
        for i in range(phit_nodes.shape[1]):
            acc += weights[q] * local_potential(code, phit_nodes[q, i])
    return acc


@njit(fastmath=FASTMATH, cache=True)
def interaction(pot_code, par_code, weights, phit_nodes, omega, beta, amp):
    """s of one cos-net: the local part on the nodes plus the parameter action."""
    s = 0.0
    if pot_code != POTENTIAL_NONE:
        s += node_integral(pot_code, weights, phit_nodes)
    if par_code != PARAMETER_ACTION_NONE:
        s += parameter_action(par_code, omega, beta, amp)
    return s


@njit(fastmath=FASTMATH, cache=True)
def network_parameter_action(par_code, network, seed, widths, cw, cb, init_code, w_buf, b_buf):
    """sum_l A(l, W^(l), b^(l)) of one MLP: each layer's dense weights and biases drawn
    again from their streams (float64; w_buf, b_buf at least the largest W and layer)."""
    acc = 0.0
    for layer in range(1, widths.size):
        n_out, n_in = widths[layer], widths[layer - 1]
        w = w_buf[: n_out * n_in].reshape((n_out, n_in))
        draw_dense_weights(w, init_code, cw[layer - 1], seed, network, layer)
        b = b_buf[:n_out]
        if cb[layer - 1] > 0.0:
            fill_normal(b, seed, network, stream_id(layer, PURPOSE_BIAS), math.sqrt(cb[layer - 1]))
        else:
            b[:] = 0.0
        acc += layer_action(par_code, layer, w, b)
    return acc


@njit(fastmath=FASTMATH, cache=True)
def network_interaction(
    pot_code, par_code, weights, zt_nodes, network, seed, widths, cw, cb, init_code, w_buf, b_buf
):
    """s of one MLP: the local part of its outputs zt_nodes (Q, n_L) on the nodes plus the
    parameter action of its layers."""
    s = 0.0
    if pot_code != POTENTIAL_NONE:
        s += node_integral(pot_code, weights, zt_nodes)
    if par_code != PARAMETER_ACTION_NONE:
        s += network_parameter_action(
            par_code, network, seed, widths, cw, cb, init_code, w_buf, b_buf
        )
    return s


@njit(parallel=True, cache=True)
def add_deformed_to_blocks(stats, first, coupling, block_sums, block_counts, block_shift):
    """Add per-network rows [x (n) | s] (stats (count, L, n + 1), the same s in every
    layer's row) of networks first, ... to block (index mod n_blocks), in index order, as
    the columns of every layer

        [x | s | s x | w | w x | w^2],   w = exp(-coupling s - shift_b),

    with shift_b the block's largest -coupling s so far (log-sum-exp: the w-columns of a
    block are rescaled by exp(old - new) when a network raises it, so no weight
    overflows and the largest is 1). Parallel over blocks: each block takes its own
    networks in index order, so the sums are those of the serial loop, bit for bit."""
    n_blocks = block_sums.shape[0]
    count, n_layers = stats.shape[0], stats.shape[1]
    n = stats.shape[2] - 1
    for b in prange(n_blocks):
        t = (b - first) % n_blocks  # the batch's first network of block b
        while t < count:
            s = stats[t, 0, n]
            log_w = -coupling * s
            if block_counts[b] == 0 or log_w > block_shift[b]:
                scale = math.exp(block_shift[b] - log_w) if block_counts[b] > 0 else 0.0
                for layer in range(n_layers):
                    out = block_sums[b, layer]
                    for i in range(2 * n + 1, 3 * n + 2):
                        out[i] *= scale
                    out[3 * n + 2] *= scale * scale
                block_shift[b] = log_w
            w = math.exp(log_w - block_shift[b])
            block_counts[b] += 1
            for layer in range(n_layers):
                out = block_sums[b, layer]
                row = stats[t, layer]
                for i in range(n):
                    out[i] += row[i]
                    out[n + 1 + i] += s * row[i]
                    out[2 * n + 2 + i] += w * row[i]
                out[n] += s
                out[2 * n + 1] += w
                out[3 * n + 2] += w * w
            t += n_blocks


__all__ = [
    "add_deformed_to_blocks",
    "interaction",
    "layer_action",
    "local_potential",
    "network_interaction",
    "parameter_action",
]
