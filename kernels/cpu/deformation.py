"""Deformations of cos-net fields (nnft_fast.deformations): the interaction of one network,
s = S_int / coupling, and the streaming reweighted block sums.

    s = sum_q W_q V(phi(y_q)) + A(omega, beta, amp)

with (y_q, W_q) a Gauss-Legendre tensor rule on the box (nnft_fast.quadrature), V the local
potential (phi^4 / 4! built in, or a user's @njit function) and A a user's @njit action of
the network's parameters (none built in). The field on the nodes is the same
``field.evaluate_field`` as on the points: the deformation costs N Q cosines per network.
User functions are bound by re-jitting the call path (``deformation_kernels_for``).
"""

import math

from numba import njit, prange

from .codes import PARAMETER_ACTION_NONE, POTENTIAL_NONE, POTENTIAL_PHI4
from .config import FASTMATH

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
    """A(omega, beta, amp) of the built-in parameter actions: none (user actions replace
    this function)."""
    return 0.0


@njit(fastmath=FASTMATH, cache=True)
def node_integral(code, weights, phit_nodes):
    """sum_q W_q V(phi(y_q)) of the field phit_nodes (Q, 1) on the rule's nodes."""
    acc = 0.0
    for q in range(weights.size):
        acc += weights[q] * local_potential(code, phit_nodes[q, 0])
    return acc


@njit(fastmath=FASTMATH, cache=True)
def interaction(pot_code, par_code, weights, phit_nodes, omega, beta, amp):
    """s of one network: the local part on the nodes plus the parameter action."""
    s = 0.0
    if pot_code != POTENTIAL_NONE:
        s += node_integral(pot_code, weights, phit_nodes)
    if par_code != PARAMETER_ACTION_NONE:
        s += parameter_action(par_code, omega, beta, amp)
    return s


@njit(parallel=True, cache=True)
def add_deformed_to_blocks(stats, first, coupling, block_sums, block_counts, block_shift):
    """Add per-network rows [x (n) | s] (stats (count, 1, n + 1)) of networks first, ... to
    block (index mod n_blocks), in index order, as the columns

        [x | s | s x | w | w x | w^2],   w = exp(-coupling s - shift_b),

    with shift_b the block's largest -coupling s so far (log-sum-exp: the w-columns of a
    block are rescaled by exp(old - new) when a network raises it, so no weight
    overflows and the largest is 1). Parallel over blocks: each block takes its own
    networks in index order, so the sums are those of the serial loop, bit for bit."""
    n_blocks = block_sums.shape[0]
    count = stats.shape[0]
    n = stats.shape[2] - 1
    for b in prange(n_blocks):
        out = block_sums[b, 0]
        t = (b - first) % n_blocks  # the batch's first network of block b
        while t < count:
            row = stats[t, 0]
            s = row[n]
            log_w = -coupling * s
            if block_counts[b] == 0 or log_w > block_shift[b]:
                scale = math.exp(block_shift[b] - log_w) if block_counts[b] > 0 else 0.0
                for i in range(2 * n + 1, 3 * n + 2):
                    out[i] *= scale
                out[3 * n + 2] *= scale * scale
                block_shift[b] = log_w
            w = math.exp(log_w - block_shift[b])
            block_counts[b] += 1
            for i in range(n):
                out[i] += row[i]
                out[n + 1 + i] += s * row[i]
                out[2 * n + 2 + i] += w * row[i]
            out[n] += s
            out[2 * n + 1] += w
            out[3 * n + 2] += w * w
            t += n_blocks


__all__ = ["add_deformed_to_blocks", "interaction", "local_potential", "parameter_action"]
