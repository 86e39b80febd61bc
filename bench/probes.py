"""Benchmark-only probe kernels: pieces of the nnft_fast CPU path timed in isolation.

They reuse the package kernels (``nnft_fast.kernels.cpu.*``) unchanged and mirror the
structure of ``moments.batch_statistics`` (prange over chunks of networks, reused buffers),
so that

    rng_only        the random normals a network needs and nothing else,
    forward_only    the forward pass (moments.forward_one) into a reused buffer, no moments,
    moments_only    the per-layer statistics of precomputed preactivations, no forward,

add up (roughly) to ``nf.sample`` (see ``bench.compare.build_probes``). Each writes one
number per network into ``sink`` so the work cannot be optimised away. Parallel kernels,
so not cached (docs/architecture.md#numba): they compile in about a second on first use.
"""
import numpy as np
from numba import njit, prange

from nnft_fast.kernels.cpu.moments import (chunk_bounds, chunk_count, forward_one,
                                           forward_workspace_size, layer_statistics,
                                           statistics_workspace_size)
from nnft_fast.kernels.cpu.rng import PURPOSE_WEIGHTS, fill_normal, stream_id


@njit(parallel=True)
def rng_only(first, count, seed, normals_per_layer, sink):
    """Per network: fill one buffer of normals_per_layer[l] standard normals per layer."""
    n_layers = normals_per_layer.size
    for t in prange(count):
        acc = 0.0
        for layer in range(1, n_layers + 1):
            buf = np.empty(normals_per_layer[layer - 1])
            fill_normal(buf, seed, first + t, stream_id(layer, PURPOSE_WEIGHTS), 1.0)
            acc += buf[buf.size - 1]
        sink[t] = acc


@njit(parallel=True)
def forward_only(method_code, count, seed, xt, widths, cw, cb, init_code, act_code, offsets,
                 sink):
    """Per network: ``forward_one`` (all layers) into buffers reused within a chunk, as in
    ``batch_statistics``; no statistics."""
    nb = xt.shape[1]
    n_scratch = forward_workspace_size(method_code, widths, nb)
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        zbuf = np.empty(offsets[widths.size - 1])
        s_buf = np.empty(widths.max() * nb)
        scratch = np.empty(n_scratch)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            forward_one(method_code, t, seed, xt, widths, cw, cb, init_code, act_code, zbuf,
                        offsets, s_buf, scratch)
            sink[t] = zbuf[zbuf.size - 1]


@njit(parallel=True)
def moments_only(count, pre, widths, nb, offsets, pair_a, pair_b, quad_p1, quad_p2,
                 four_point, n_stat, sink):
    """Per network t: the statistics of ``batch_statistics`` for the preactivations
    pre[t % len(pre)] (cycling over a small, cache-friendly set), no forward pass."""
    n_layers = widths.size - 1
    n_pre = pre.shape[0]
    n_max = widths.max()
    for t in prange(count):
        stats = np.empty((n_layers, n_stat))
        work = np.empty(statistics_workspace_size(n_max, nb, pair_a.size))
        row = pre[t % n_pre]
        acc = 0.0
        for layer in range(1, n_layers + 1):
            zt = row[offsets[layer - 1]:offsets[layer]].reshape((nb, widths[layer]))
            layer_statistics(zt, pair_a, pair_b, quad_p1, quad_p2, four_point, stats[layer - 1],
                             work)
            acc += stats[layer - 1, n_stat - 1]
        sink[t] = acc
