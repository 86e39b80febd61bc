"""Block-level building blocks of the one-block-per-network CUDA kernels.

A network (or matrix) is handled by one thread block of THREADS threads; loops over
neurons stride by THREADS, and reductions are fixed-order tree sums in shared memory, so
every result is deterministic (it differs from the CPU only in summation order).
"""

from numba import config, cuda

from .rng import store_normal_block, store_uniform_block

# Threads per block, a power of two (tree reductions). The CUDA simulator runs each
# thread as a Python thread, so there blocks are 8 threads wide: loops over neurons then
# stride many times on tiny test problems, and the tests stay fast.
THREADS = 8 if config.ENABLE_CUDASIM else 128


@cuda.jit(device=True)
def block_reduce(value, shared, maximum):
    """Sum (``maximum``: largest) of ``value`` over the block's threads (fixed tree
    order); every thread gets it. ``shared``: (THREADS,) float64."""
    t = cuda.threadIdx.x
    shared[t] = value
    cuda.syncthreads()
    width = THREADS // 2
    while width > 0:
        if t < width:
            if maximum:
                shared[t] = max(shared[t], shared[t + width])
            else:
                shared[t] += shared[t + width]
        cuda.syncthreads()
        width //= 2
    total = shared[0]
    cuda.syncthreads()
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
        q += THREADS
    cuda.syncthreads()


@cuda.jit(device=True)
def fill_uniforms(out, count, seed, network, stream, low, high):
    """out[m] = low + (high - low) * uniform m of the stream for m < count (the CPU
    ``fill_uniform``)."""
    q = cuda.threadIdx.x
    while 4 * q < count:
        store_uniform_block(out, q, count, seed, network, stream, low, high)
        q += THREADS
    cuda.syncthreads()
