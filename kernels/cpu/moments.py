"""Per-network moment statistics and their order-fixed reduction into blocks (docs/estimators.md).

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

from .codes import METHOD_DENSE, PARAMETER_ACTION_NONE
from .config import FASTMATH, FASTMATH_REDUCTIONS
from .deformation import network_interaction
from .forward import (
    activate_layer,
    add_residual,
    dense_preactivation,
    dense_workspace_size,
    mixes_residual,
    projected_preactivation,
    projected_workspace_size,
)

CHUNK_NETWORKS = 16
NEURON_BLOCK = 256


@njit(cache=True)
def statistics_workspace_size(n_max, nb, n_pairs):
    """float64 elements of ``work`` for ``layer_statistics`` on layers up to n_max wide."""
    return min(n_max, NEURON_BLOCK) * n_pairs


@njit(fastmath=FASTMATH_REDUCTIONS, cache=True)
def layer_statistics(zt, pair_a, pair_b, quad_p1, quad_p2, four_point, out, work):
    """Write [G | Q | GG] (or [G]) of one layer's input-major zt (B x n) into ``out``
    (float64).

    With Q, neurons are taken in blocks of NEURON_BLOCK; in each block the pair products
    y_t,i = z_i,a z_i,b are laid out pair-major (float64, small enough to stay in L1), so
    G and Q are contiguous dot products (vectorised), summed block by block in a fixed
    order. ``work``: float64 scratch of at least ``statistics_workspace_size`` elements.
    """
    nb, n = zt.shape
    n_pairs = pair_a.size
    n_quads = quad_p1.size if four_point else 0
    y = work[: n_pairs * min(n, NEURON_BLOCK)].reshape((n_pairs, min(n, NEURON_BLOCK)))
    block = y.shape[1] if four_point else n  # G alone needs no y: one pass over neurons
    out[: n_pairs + n_quads] = 0.0
    for start in range(0, n, block):
        size = min(block, n - start)
        for t in range(n_pairs):
            za = zt[pair_a[t], start : start + size]
            zb = zt[pair_b[t], start : start + size]
            acc = 0.0
            if four_point:  # keep the pair products for Q
                yt = y[t]
                for i in range(size):
                    yt[i] = np.float64(za[i]) * np.float64(zb[i])
                # A pure reduction, apart from the stores above: a loop that stores and
                # sums gets a runtime aliasing check, and its scalar fallback would sum in
                # another order depending on where the buffers sit in memory.
                for i in range(size):
                    acc += yt[i]
            else:
                for i in range(size):
                    acc += np.float64(za[i]) * np.float64(zb[i])
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
def preactivation(method_code, network, seed, layer, cw, cb, init_code, st, zt, scratch):
    """zt = (W S + b)^T of one layer by the dense or projected kernel."""
    if method_code == METHOD_DENSE:
        dense_preactivation(network, seed, layer, cw, cb, init_code, st, zt, scratch)
    else:
        projected_preactivation(network, seed, layer, cw, cb, init_code, st, zt, scratch)


@njit(cache=True)
def forward_workspace_size(method_code, widths, nb):
    """Scratch elements ``preactivation`` needs for this method."""
    if method_code == METHOD_DENSE:
        return dense_workspace_size(widths, nb)
    return projected_workspace_size(widths, nb)


@njit(fastmath=FASTMATH, cache=True)
def forward_one(
    method_code,
    network,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    zbuf,
    offsets,
    s_buf,
    scratch,
    xi,
    gamma,
):
    """All layers of network ``network`` into the flat buffer ``zbuf``: layer l is
    zt^(l) (B x n_l) at zbuf[offsets[l-1]:offsets[l]]. s_buf: at least n_max * B
    elements (the activations); scratch: ``forward_workspace_size`` elements; xi, gamma:
    the residual coefficients per layer (``forward.add_residual``)."""
    nb = xt.shape[1]
    st = s_buf[: nb * xt.shape[0]].reshape((nb, xt.shape[0]))
    st[:, :] = xt.T
    for layer in range(1, widths.size):
        zt = zbuf[offsets[layer - 1] : offsets[layer]].reshape((nb, widths[layer]))
        preactivation(
            method_code,
            network,
            seed,
            layer,
            cw[layer - 1],
            cb[layer - 1],
            init_code,
            st,
            zt,
            scratch,
        )
        if mixes_residual(xi, gamma, layer):
            prev = zbuf[offsets[layer - 2] : offsets[layer - 1]].reshape((nb, widths[layer]))
            add_residual(zt, prev, xi[layer - 1], gamma[layer - 1])
        st = s_buf[: nb * widths[layer]].reshape((nb, widths[layer]))
        activate_layer(act_code, zt, st)


@njit(cache=True)
def chunk_count(count):
    """Chunks of up to CHUNK_NETWORKS networks for the parallel drivers; each chunk reuses
    one set of buffers. Every network's numbers are independent of the cut."""
    return (count + CHUNK_NETWORKS - 1) // CHUNK_NETWORKS


@njit(cache=True)
def chunk_bounds(count, n_chunks, chunk):
    """Networks [start, stop) of chunk ``chunk`` of ``n_chunks`` contiguous chunks."""
    return chunk * count // n_chunks, (chunk + 1) * count // n_chunks


@njit(cache=True)
def copy_neurons(zt, out):
    """out[i B + a] = zt[a, i] for the first out.size / B neurons (neuron-major raw rows)."""
    nb = zt.shape[0]
    for i in range(out.size // nb):
        for a in range(nb):
            out[i * nb + a] = zt[a, i]


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_statistics(
    method_code,
    first,
    count,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    pair_a,
    pair_b,
    quad_p1,
    quad_p2,
    four_point,
    stats,
    save_layers,
    save_neurons,
    raw,
    deformed,
    node_weights,
    pot_code,
    par_code,
    xi,
    gamma,
):
    """stats[t, l-1, :] = statistics of layer l of network first + t (parallel over
    chunks of networks, each with its own buffers; each layer's statistics are taken
    right after its forward step, while it is in cache).

    The forward arithmetic runs in ``raw.dtype``. Raw outputs: for each j, the first
    ``save_neurons[j]`` neurons of layer ``save_layers[j]`` (increasing) are copied,
    neuron-major (z_ia at i * B + a), into consecutive slots of ``raw[t]`` (shape
    (count, sum_j save_neurons[j] * B)).

    A ``deformed`` run: the columns of xt are the B inputs followed by the Q quadrature
    nodes (weights ``node_weights``), pushed through the network together (so the
    projected sampler draws one network on all B + Q); the statistics are those of the B
    inputs, and the last slot of every layer's row holds the network's interaction s
    (``deformation.network_interaction``: the potential on the last layer's outputs at
    the nodes, plus the parameter action).

    xi, gamma: the residual coefficients per layer (``forward.add_residual``); a residual
    layer keeps z^(l-1) in a buffer of its own while its kernel overwrites the layer's.
    """
    nb_all = xt.shape[1]
    nb = nb_all - node_weights.size
    n_base = stats.shape[2] - (1 if deformed else 0)
    n_max = widths.max()
    n_layers = widths.size - 1
    n_scratch = forward_workspace_size(method_code, widths, nb_all)
    n_stat_work = statistics_workspace_size(n_max, nb, pair_a.size)
    n_action = dense_workspace_size(widths, nb) if par_code != PARAMETER_ACTION_NONE else 0
    n_residual = 0
    for layer in range(1, widths.size):
        if mixes_residual(xi, gamma, layer) and xi[layer - 1] != 0.0:
            n_residual = n_max * nb_all
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        zt_buf = np.empty(n_max * nb_all, raw.dtype)
        s_buf = np.empty(n_max * nb_all, raw.dtype)
        prev_buf = np.empty(n_residual, raw.dtype)
        scratch = np.empty(n_scratch, raw.dtype)
        stat_work = np.empty(n_stat_work)
        w_buf = np.empty(n_action)
        b_buf = np.empty(n_max if n_action else 0)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            st = s_buf[: nb_all * xt.shape[0]].reshape((nb_all, xt.shape[0]))
            st[:, :] = xt.T
            pos = 0
            j = 0
            for layer in range(1, widths.size):
                n = widths[layer]
                zt = zt_buf[: nb_all * n].reshape((nb_all, n))
                residual = mixes_residual(xi, gamma, layer)
                n_prev = nb_all * n if residual and xi[layer - 1] != 0.0 else 0
                prev = prev_buf[:n_prev]
                prev[:] = zt_buf[:n_prev]  # z^(l-1), of the same width
                preactivation(
                    method_code,
                    first + t,
                    seed,
                    layer,
                    cw[layer - 1],
                    cb[layer - 1],
                    init_code,
                    st,
                    zt,
                    scratch,
                )
                if residual:
                    add_residual(
                        zt,
                        prev.reshape((nb_all, n_prev // nb_all)),
                        xi[layer - 1],
                        gamma[layer - 1],
                    )
                zt_points = zt_buf[: nb * n].reshape((nb, n))  # the first B rows
                layer_statistics(
                    zt_points,
                    pair_a,
                    pair_b,
                    quad_p1,
                    quad_p2,
                    four_point,
                    stats[t, layer - 1, :n_base],
                    stat_work,
                )
                if j < save_layers.size and save_layers[j] == layer:
                    size = save_neurons[j] * nb
                    copy_neurons(zt_points, raw[t, pos : pos + size])
                    pos += size
                    j += 1
                if deformed and layer == n_layers:
                    s = network_interaction(
                        pot_code,
                        par_code,
                        node_weights,
                        zt_buf[nb * n : nb_all * n].reshape((nb_all - nb, n)),
                        first + t,
                        seed,
                        widths,
                        cw,
                        cb,
                        init_code,
                        w_buf,
                        b_buf,
                    )
                    for l in range(n_layers):
                        stats[t, l, n_base] = s
                st = s_buf[: nb_all * n].reshape((nb_all, n))
                activate_layer(act_code, zt, st)


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_preactivations(
    method_code,
    first,
    count,
    seed,
    xt,
    widths,
    cw,
    cb,
    init_code,
    act_code,
    offsets,
    out,
    xi,
    gamma,
):
    """out[t] = flat preactivations (all layers, input-major: layer l is zt^(l), B x n_l,
    at offsets[l-1]) of network first + t; xi, gamma: the residual coefficients."""
    nb = xt.shape[1]
    n_scratch = forward_workspace_size(method_code, widths, nb)
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        s_buf = np.empty(widths.max() * nb, out.dtype)
        scratch = np.empty(n_scratch, out.dtype)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            forward_one(
                method_code,
                first + t,
                seed,
                xt,
                widths,
                cw,
                cb,
                init_code,
                act_code,
                out[t],
                offsets,
                s_buf,
                scratch,
                xi,
                gamma,
            )


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
