"""Block-level building blocks of the one-block-per-network CUDA kernels.

A network (or matrix) is handled by one thread block. Its size is chosen at launch from
the network's widths (``block_threads``: a power of two from WARP to THREADS) and read in
the kernels as ``cuda.blockDim.x``: loops over neurons stride by it, so one compiled
kernel serves every block size, and a network no wider than a warp runs on one warp
instead of leaving most of THREADS threads idle. (Several narrow networks per block,
a warp each, would need every device function's barriers and thread indices rewritten
for warp teams, with no ``syncwarp`` in the simulator to test them on, and the field
kernels share these building blocks; blocks of one warp keep the one-network-per-block
code, whose block barriers then span a single warp. The price: on sm_90 at most 32
blocks are resident per SM, 1,024 threads of one-warp blocks.)

Reductions (``block_sum``, ``block_max``) are deterministic: a fixed shuffle tree inside
each warp (lane i takes lane i + w for w = WARP/2, ..., 1), then one pass over the
per-warp partials in warp order through shared memory; two barriers per reduction
instead of one per tree level. Results differ from the CPU only in summation order.

The CUDA simulator has no warp shuffles; there ``warp_reduce`` runs the same tree in
shared memory (lane 0 of each warp adds its warp's values in the shuffle order), so both
targets sum in the same order.
"""

from numba import config, cuda

from .rng import store_normal_block, store_uniform_block

# The largest block (threads per network) and the warp width, powers of two. The CUDA
# simulator runs each thread as a Python thread, so there blocks are at most 8 threads
# wide (loops over neurons stride many times on tiny test problems, and the tests stay
# fast), in emulated warps of 4: an 8-thread block has two warps, like a GPU block of
# 128 threads has four, and both reduction levels are exercised.
THREADS = 8 if config.ENABLE_CUDASIM else 128
WARP = 4 if config.ENABLE_CUDASIM else 32
_FULL_MASK = 0xFFFFFFFF  # every lane of the warp takes part in the shuffles


def block_threads(widths):
    """Threads per network for layer widths ``widths`` (input width first): the smallest
    power of two that covers the widest layer, at least WARP and at most THREADS."""
    threads = WARP
    while threads < min(max(int(w) for w in widths), THREADS):
        threads *= 2
    return threads


@cuda.jit(device=True)
def combine(a, b, maximum):
    """a + b, or the larger of a and b if ``maximum``."""
    return max(a, b) if maximum else a + b


if config.ENABLE_CUDASIM:

    @cuda.jit(device=True)
    def warp_reduce(value, shared, maximum):
        """Simulator twin of the shuffle tree: lane 0 of each warp gets the warp's sum
        (``maximum``: largest), summed in place in shared[warp's slots] in the shuffle
        order; the other lanes get their own value back."""
        t = cuda.threadIdx.x
        shared[t] = value
        cuda.syncthreads()
        if t % WARP == 0:
            width = WARP // 2
            while width > 0:
                for i in range(t, t + width):
                    shared[i] = combine(shared[i], shared[i + width], maximum)
                width //= 2
            value = shared[t]
        return value

else:

    @cuda.jit(device=True)
    def warp_reduce(value, shared, maximum):
        """Lane 0 of each warp gets the warp's sum (``maximum``: largest) by a shuffle
        tree, lane i adding lane i + w for w = WARP/2, ..., 1 (other lanes: partial
        sums); ``shared`` is not used (the simulator's twin needs it)."""
        width = WARP // 2
        while width > 0:
            value = combine(value, cuda.shfl_down_sync(_FULL_MASK, value, width), maximum)
            width //= 2
        return value


@cuda.jit(device=True)
def block_reduce(value, shared, maximum):
    """Sum (``maximum``: largest) of ``value`` over the block's threads, in a fixed order:
    each warp's shuffle tree, then the warps' partials in warp order; every thread gets
    it. ``shared``: (THREADS,) float64; the block size is a multiple of WARP."""
    t = cuda.threadIdx.x
    partial = warp_reduce(value, shared, maximum)
    if t % WARP == 0:
        shared[t] = partial  # warp w's partial at shared[w WARP]
    cuda.syncthreads()
    total = shared[0]
    w = WARP
    while w < cuda.blockDim.x:
        total = combine(total, shared[w], maximum)
        w += WARP
    cuda.syncthreads()  # every thread has read the partials before shared is reused
    return total


@cuda.jit(device=True)
def block_sum(value, shared):
    """Sum of ``value`` over the block's threads (``block_reduce``)."""
    return block_reduce(value, shared, False)


@cuda.jit(device=True)
def block_max(value, shared):
    """Largest ``value`` over the block's threads (``block_reduce``)."""
    return block_reduce(value, shared, True)


@cuda.jit(device=True)
def fill_normals(out, count, seed, network, stream, scale):
    """out[m] = scale * normal m of the stream for m < count (the CPU ``fill_normal``),
    threads striding over blocks of 4 numbers."""
    q = cuda.threadIdx.x
    while 4 * q < count:
        store_normal_block(out, q, count, seed, network, stream, scale)
        q += cuda.blockDim.x
    cuda.syncthreads()


@cuda.jit(device=True)
def fill_uniforms(out, count, seed, network, stream, low, high):
    """out[m] = low + (high - low) * uniform m of the stream for m < count (the CPU
    ``fill_uniform``)."""
    q = cuda.threadIdx.x
    while 4 * q < count:
        store_uniform_block(out, q, count, seed, network, stream, low, high)
        q += cuda.blockDim.x
    cuda.syncthreads()
