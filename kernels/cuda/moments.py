"""Per-network moment statistics and their deterministic block accumulation on the GPU.

Twins of ``kernels/cpu/moments.py`` (formulas there, docs/estimators.md): ``statistics_kernel``
runs one thread block per network (forward pass of ``kernels/cuda/forward.py`` and, right
after each layer, [G | Q | GG] by fixed-order block sums, ``block.block_sum``),
``add_to_blocks_kernel`` adds the per-network statistics into the accumulator's float64
block sums on the device, and ``nonfinite_rows_kernel`` flags the (network, layer) rows
holding inf or NaN.
"""

import math

from numba import config, cuda, float64

from .block import THREADS, block_sum
from .forward import (
    MAX_B,
    activate_layer,
    add_residual,
    copy_layer,
    load_inputs,
    mixes_residual,
    preactivation,
)


@cuda.jit(device=True)
def layer_statistics(z, n, pair_a, pair_b, quad_p1, quad_p2, four_point, out, shared):
    """out = [G | Q | GG] (or [G]) of one layer, z[a n + i] (the CPU ``layer_statistics``)."""
    t = cuda.threadIdx.x
    n_pairs = pair_a.size
    n_quads = quad_p1.size if four_point else 0
    for u in range(n_pairs + n_quads):
        part = 0.0
        i = t
        while i < n:
            if u < n_pairs:
                part += z[pair_a[u] * n + i] * z[pair_b[u] * n + i]
            else:
                p1 = quad_p1[u - n_pairs]
                p2 = quad_p2[u - n_pairs]
                part += (
                    z[pair_a[p1] * n + i]
                    * z[pair_b[p1] * n + i]
                    * (z[pair_a[p2] * n + i] * z[pair_b[p2] * n + i])
                )
            i += cuda.blockDim.x
        total = block_sum(part, shared)
        if t == 0:
            out[u] = total / n
    if four_point and t == 0:
        idx = n_pairs + n_quads
        for t1 in range(n_pairs):
            for t2 in range(t1, n_pairs):
                out[idx] = out[t1] * out[t2]
                idx += 1
    cuda.syncthreads()


@cuda.jit(device=True)
def copy_neurons(z, n, nb, out):
    """out[i B + a] = z[a n + i] for the first out.size / B neurons (the CPU
    ``copy_neurons``: neuron-major raw rows)."""
    e = cuda.threadIdx.x
    while e < out.size:
        out[e] = z[(e % nb) * n + e // nb]
        e += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit
def statistics_kernel(
    method_code,
    first,
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
    work,
    layout,
    xi,
    gamma,
):
    """stats[t, l-1, :] = statistics of layer l of network first + t, block t (the CPU
    ``batch_statistics``; raw outputs likewise). work: (count, layout[-1]) float64 cut by
    ``forward.work_layout`` (layout; with its prev region wherever some xi != 0); xi,
    gamma: the residual coefficients per layer (``forward.add_residual``). Any block
    size that is a multiple of WARP up to THREADS (``block.block_threads``)."""
    net = cuda.blockIdx.x
    if net >= stats.shape[0]:
        return
    network = first + net
    nb = xt.shape[1]
    shared = cuda.shared.array(THREADS, float64)
    r = cuda.shared.array((MAX_B, MAX_B), float64)
    small = cuda.shared.array(4, float64)
    row = work[net]
    s = row[layout[0] : layout[1]]
    z = row[layout[1] : layout[2]]
    factor = row[layout[2] : layout[3]]
    q = row[layout[3] : layout[4]]
    beta = row[layout[4] : layout[5]]
    rdiag = row[layout[5] : layout[6]]
    bias = row[layout[6] : layout[7]]
    prev = row[layout[7] : layout[8]]
    load_inputs(xt, s)
    pos = 0
    j = 0
    for layer in range(1, widths.size):
        n_in = widths[layer - 1]
        n_out = widths[layer]
        residual = mixes_residual(xi, gamma, layer)
        if residual and xi[layer - 1] != 0.0:
            copy_layer(z, prev, nb * n_out)  # z^(l-1), of the same width
        preactivation(
            method_code,
            network,
            seed,
            layer,
            cw[layer - 1],
            cb[layer - 1],
            init_code,
            s,
            n_in,
            nb,
            z,
            n_out,
            factor,
            q,
            beta,
            rdiag,
            bias,
            r,
            shared,
            small,
        )
        if residual:
            add_residual(z, prev, nb * n_out, xi[layer - 1], gamma[layer - 1])
        layer_statistics(
            z, n_out, pair_a, pair_b, quad_p1, quad_p2, four_point, stats[net, layer - 1], shared
        )
        if j < save_layers.size and save_layers[j] == layer:
            size = save_neurons[j] * nb
            copy_neurons(z, n_out, nb, raw[net, pos : pos + size])
            pos += size
            j += 1
        activate_layer(act_code, z, s, nb * n_out)


# Threads per block of the element-wise kernels below (``elementwise_grid``).
ELEMENTWISE_THREADS = 128


def elementwise_grid(n):
    """(blocks, threads) for an element-wise kernel over n elements: one thread each on a
    GPU; under the simulator one block of THREADS threads that stride over the elements
    (every simulated thread is a Python thread, and starting one per element dominated
    the simulator tests' time)."""
    if config.ENABLE_CUDASIM:
        return 1, THREADS
    return max(1, (n + ELEMENTWISE_THREADS - 1) // ELEMENTWISE_THREADS), ELEMENTWISE_THREADS


@cuda.jit
def add_to_blocks_kernel(stats, first, block_sums, block_counts):
    """block_sums[b] += stats[t] for every network first + t with (first + t) mod n_blocks
    == b, in increasing t: the CPU ``add_to_blocks`` order, so the sums are bit-identical
    to adding the same statistics on the CPU. One (block, element) per thread, threads
    striding by the grid size (``elementwise_grid``)."""
    n_blocks = block_sums.shape[0]
    count, n_layers, n_stat = stats.shape
    e = cuda.grid(1)
    while e < n_blocks * n_layers * n_stat:
        b = e // (n_layers * n_stat)
        layer = (e // n_stat) % n_layers
        u = e % n_stat
        t = (b - first % n_blocks + n_blocks) % n_blocks
        acc = block_sums[b, layer, u]
        n_added = 0
        while t < count:
            acc += stats[t, layer, u]
            n_added += 1
            t += n_blocks
        block_sums[b, layer, u] = acc
        if layer == 0 and u == 0:
            block_counts[b] += n_added
        e += cuda.gridsize(1)


@cuda.jit
def nonfinite_rows_kernel(stats, bad):
    """bad[t, l] = 1 if stats[t, l, :] holds an inf or NaN, else 0 (the CPU
    accumulator's ``~np.isfinite(stats).all(axis=2)``). One (network, layer) per thread,
    threads striding by the grid size (``elementwise_grid``)."""
    count, n_layers, n_stat = stats.shape
    e = cuda.grid(1)
    while e < count * n_layers:
        t = e // n_layers
        layer = e % n_layers
        flag = 0
        for u in range(n_stat):
            if not math.isfinite(stats[t, layer, u]):
                flag = 1
        bad[t, layer] = flag
        e += cuda.gridsize(1)


KERNELS = {
    "statistics_kernel": statistics_kernel,
    "add_to_blocks_kernel": add_to_blocks_kernel,
    "nonfinite_rows_kernel": nonfinite_rows_kernel,
}
