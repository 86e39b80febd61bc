"""Per-network moment statistics and their order-fixed reduction into blocks (DESIGN.md §3).

For a layer with preactivations z (n x B), per network:
    G_ab   = (1/n) sum_i z_ia z_ib                      for a <= b        (pairs)
    Q_abcd = (1/n) sum_i z_ia z_ib z_ic z_id            for a <= b <= c <= d (quads)
    GG     = G_p G_p'                                   for pairs p <= p'
stored compactly as one vector [G | Q | GG] (two-point mode: [G] only). Quads are
enumerated as (pair p1 = (a,b), pair p2 = (c,d)) so Q costs one product per quad.
All sums are float64 whatever the forward dtype.
"""
import numpy as np
from numba import njit, prange

from .config import FASTMATH, FASTMATH_REDUCTIONS
from .forward import forward_dense_one, forward_projected_one

METHOD_DENSE = 0
METHOD_PROJECTED = 1


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def layer_statistics(z, pair_a, pair_b, quad_p1, quad_p2, four_point, out):
    """Write [G | Q | GG] (or [G]) of one layer's z (n x B) into ``out`` (float64).

    z is first transposed to input-major float64; pair products y_t,i = z_i,a z_i,b are
    laid out pair-major, so G and Q are contiguous dot products over neurons (vectorised).
    """
    n, nb = z.shape
    n_pairs = pair_a.size
    zt = np.empty((nb, n))
    for i in range(n):
        for a in range(nb):
            zt[a, i] = z[i, a]
    y = np.empty((n_pairs, n))
    inv_n = 1.0 / n
    for t in range(n_pairs):
        za = zt[pair_a[t]]
        zb = zt[pair_b[t]]
        acc = 0.0
        for i in range(n):
            y[t, i] = za[i] * zb[i]
            acc += y[t, i]
        out[t] = acc * inv_n
    if four_point:
        for u in range(quad_p1.size):
            p1 = quad_p1[u]
            p2 = quad_p2[u]
            acc = 0.0
            for i in range(n):
                acc += y[p1, i] * y[p2, i]
            out[n_pairs + u] = acc * inv_n
        idx = n_pairs + quad_p1.size
        for t1 in range(n_pairs):
            for t2 in range(t1, n_pairs):
                out[idx] = out[t1] * out[t2]
                idx += 1


@njit(fastmath=FASTMATH, cache=True)
def forward_one(method_code, network, seed, xt, widths, cw, cb, init_code, act_code, zbuf,
                offsets):
    """Dispatch one network's forward pass to the dense or projected kernel."""
    if method_code == METHOD_DENSE:
        forward_dense_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf, offsets)
    else:
        forward_projected_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf,
                              offsets)


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_statistics(method_code, first, count, seed, xt, widths, cw, cb, init_code, act_code,
                     offsets, pair_a, pair_b, quad_p1, quad_p2, four_point, stats,
                     save_layers, save_neurons, raw):
    """stats[t, l-1, :] = statistics of layer l of network first + t (parallel over t).

    The forward arithmetic runs in ``raw.dtype``. Raw outputs: for each j, the first
    ``save_neurons[j]`` neurons of layer ``save_layers[j]`` are copied, neuron-major, into
    consecutive slots of ``raw[t]`` (shape (count, sum_j save_neurons[j] * B)).
    """
    n_layers = widths.size - 1
    nb = xt.shape[1]
    for t in prange(count):
        zbuf = np.empty(offsets[n_layers], raw.dtype)
        forward_one(method_code, first + t, seed, xt, widths, cw, cb, init_code, act_code,
                    zbuf, offsets)
        for layer in range(1, n_layers + 1):
            z = zbuf[offsets[layer - 1]:offsets[layer]].reshape((widths[layer], nb))
            layer_statistics(z, pair_a, pair_b, quad_p1, quad_p2, four_point, stats[t, layer - 1])
        pos = 0
        for j in range(save_layers.size):
            start = offsets[save_layers[j] - 1]
            size = save_neurons[j] * nb
            raw[t, pos:pos + size] = zbuf[start:start + size]
            pos += size


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_preactivations(method_code, first, count, seed, xt, widths, cw, cb, init_code,
                         act_code, offsets, out):
    """out[t] = flat preactivations (all layers) of network first + t."""
    for t in prange(count):
        forward_one(method_code, first + t, seed, xt, widths, cw, cb, init_code, act_code,
                    out[t], offsets)


@njit(cache=True)
def add_to_blocks(stats, first, block_sums, block_counts):
    """Add each network's statistics to block (network index mod n_blocks), in index order.

    The order is fixed by the network index alone, so the block sums are bit-identical
    for any batch size or thread count.
    """
    n_blocks = block_sums.shape[0]
    for t in range(stats.shape[0]):
        b = (first + t) % n_blocks
        block_counts[b] += 1
        block_sums[b] += stats[t]


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def sample_statistics(z, pair_a, pair_b, quad_p1, quad_p2, four_point, stats):
    """stats[t] = statistics of stored samples z[t] (n x B), parallel over t."""
    for t in prange(z.shape[0]):
        layer_statistics(z[t], pair_a, pair_b, quad_p1, quad_p2, four_point, stats[t])
