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
from .forward import (dense_workspace_size, forward_dense_one, forward_projected_one,
                      projected_workspace_size)

METHOD_DENSE = 0
METHOD_PROJECTED = 1
CHUNK_NETWORKS = 16
NEURON_BLOCK = 128


@njit(cache=True)
def statistics_workspace_size(n_max, nb, n_pairs):
    """float64 elements of ``work`` for ``layer_statistics`` on layers up to n_max wide."""
    return min(n_max, NEURON_BLOCK) * n_pairs


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def layer_statistics(zt, pair_a, pair_b, quad_p1, quad_p2, four_point, out, work):
    """Write [G | Q | GG] (or [G]) of one layer's input-major zt (B x n) into ``out``
    (float64).

    Neurons are taken in blocks of NEURON_BLOCK; in each block the pair products
    y_t,i = z_i,a z_i,b are laid out pair-major (float64, small enough to stay in L1), so
    G and Q are contiguous dot products (vectorised), summed block by block in a fixed
    order. ``work``: float64 scratch of at least ``statistics_workspace_size`` elements.
    """
    nb, n = zt.shape
    n_pairs = pair_a.size
    n_quads = quad_p1.size if four_point else 0
    block = min(n, NEURON_BLOCK)
    y = work[:n_pairs * block].reshape((n_pairs, block))
    out[:n_pairs + n_quads] = 0.0
    for start in range(0, n, block):
        size = min(block, n - start)
        for t in range(n_pairs):
            za = zt[pair_a[t], start:start + size]
            zb = zt[pair_b[t], start:start + size]
            yt = y[t]
            acc = 0.0
            for i in range(size):
                yt[i] = np.float64(za[i]) * np.float64(zb[i])
                acc += yt[i]
            out[t] += acc
        for u in range(n_quads):
            y1 = y[quad_p1[u]]
            y2 = y[quad_p2[u]]
            acc = 0.0
            for i in range(size):
                acc += y1[i] * y2[i]
            out[n_pairs + u] += acc
    inv_n = 1.0 / n
    for t in range(n_pairs + n_quads):
        out[t] *= inv_n
    if four_point:
        idx = n_pairs + quad_p1.size
        for t1 in range(n_pairs):
            for t2 in range(t1, n_pairs):
                out[idx] = out[t1] * out[t2]
                idx += 1


@njit(fastmath=FASTMATH, cache=True)
def forward_one(method_code, network, seed, xt, widths, cw, cb, init_code, act_code, zbuf,
                offsets, work):
    """Dispatch one network's forward pass to the dense or projected kernel."""
    if method_code == METHOD_DENSE:
        forward_dense_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf, offsets,
                          work)
    else:
        forward_projected_one(network, seed, xt, widths, cw, cb, init_code, act_code, zbuf,
                              offsets, work)


@njit(cache=True)
def forward_workspace_size(method_code, widths, nb):
    """Scratch elements ``forward_one`` needs for this method."""
    if method_code == METHOD_DENSE:
        return dense_workspace_size(widths, nb)
    return projected_workspace_size(widths, nb)


@njit(cache=True)
def chunk_count(count):
    """Chunks of up to CHUNK_NETWORKS networks for the parallel drivers; each chunk reuses
    one set of buffers. Every network's numbers are independent of the cut."""
    return (count + CHUNK_NETWORKS - 1) // CHUNK_NETWORKS


@njit(cache=True)
def chunk_bounds(count, n_chunks, chunk):
    """Networks [start, stop) of chunk ``chunk`` of ``n_chunks`` contiguous chunks."""
    return chunk * count // n_chunks, (chunk + 1) * count // n_chunks


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_statistics(method_code, first, count, seed, xt, widths, cw, cb, init_code, act_code,
                     offsets, pair_a, pair_b, quad_p1, quad_p2, four_point, stats,
                     save_layers, save_neurons, raw):
    """stats[t, l-1, :] = statistics of layer l of network first + t (parallel over
    chunks of networks, each with its own buffers).

    The forward arithmetic runs in ``raw.dtype``. Raw outputs: for each j, the first
    ``save_neurons[j]`` neurons of layer ``save_layers[j]`` are copied, neuron-major
    (z_ia at i * B + a), into consecutive slots of ``raw[t]`` (shape
    (count, sum_j save_neurons[j] * B)).
    """
    n_layers = widths.size - 1
    nb = xt.shape[1]
    n_work = forward_workspace_size(method_code, widths, nb)
    n_stat_work = statistics_workspace_size(widths.max(), nb, pair_a.size)
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        zbuf = np.empty(offsets[n_layers], raw.dtype)
        work = np.empty(n_work, raw.dtype)
        stat_work = np.empty(n_stat_work)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            forward_one(method_code, first + t, seed, xt, widths, cw, cb, init_code, act_code,
                        zbuf, offsets, work)
            for layer in range(1, n_layers + 1):
                zt = zbuf[offsets[layer - 1]:offsets[layer]].reshape((nb, widths[layer]))
                layer_statistics(zt, pair_a, pair_b, quad_p1, quad_p2, four_point,
                                 stats[t, layer - 1], stat_work)
            pos = 0
            for j in range(save_layers.size):
                layer = save_layers[j]
                zt = zbuf[offsets[layer - 1]:offsets[layer]].reshape((nb, widths[layer]))
                for i in range(save_neurons[j]):
                    for a in range(nb):
                        raw[t, pos + i * nb + a] = zt[a, i]
                pos += save_neurons[j] * nb


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_preactivations(method_code, first, count, seed, xt, widths, cw, cb, init_code,
                         act_code, offsets, out):
    """out[t] = flat preactivations (all layers, input-major: layer l is zt^(l), B x n_l,
    at offsets[l-1]) of network first + t."""
    n_work = forward_workspace_size(method_code, widths, xt.shape[1])
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        work = np.empty(n_work, out.dtype)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            forward_one(method_code, first + t, seed, xt, widths, cw, cb, init_code, act_code,
                        out[t], offsets, work)


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
    """stats[t] = statistics of stored samples z[t] (n x B, neuron-major), parallel over t."""
    count, n, nb = z.shape
    n_stat_work = statistics_workspace_size(n, nb, pair_a.size)
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        zt = np.empty((nb, n), z.dtype)
        work = np.empty(n_stat_work)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            zt[:, :] = z[t].T
            layer_statistics(zt, pair_a, pair_b, quad_p1, quad_p2, four_point, stats[t], work)
