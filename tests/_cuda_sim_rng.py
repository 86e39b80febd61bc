"""Run under NUMBA_ENABLE_CUDASIM=1 (or on a GPU) by test_rng.py: the device twins of the
generator against the CPU kernels, bit for bit. Prints JSON {case: number of values that
differ in any bit}."""

import json
import sys

import numpy as np
from numba import cuda

from nnft_fast.kernels.cpu import rng as cpu
from nnft_fast.kernels.cuda import rng as gpu

THREADS = 32
# (seed, network, stream): small, a 64-bit seed and network, the largest of each.
STREAMS = ((7, 123456789012, 9), (2**40 + 3, 5, 17), (2**64 - 1, 2**63 - 1, 0xFFFFFFFF))


@cuda.jit
def cos_turns_kernel(turns, out):
    i = cuda.grid(1)
    if i < turns.size:
        out[i] = gpu.cos_turns(turns[i])


def turns_grid():
    """Turns across quadrant boundaries, negative, and large (the field kernels' phases)."""
    quarter = np.arange(-12, 13) / 4.0
    near = np.concatenate([np.nextafter(quarter, np.inf), np.nextafter(quarter, -np.inf)])
    spread = np.random.default_rng(3).uniform(-50.0, 50.0, 300)
    return np.concatenate([quarter, near, spread, [1e6 + 0.1, -1e6 - 0.3]])


def differing_bits(got, ref):
    return int(np.count_nonzero(got.view(np.int64) != ref.view(np.int64)))


def main():
    out = {}
    m = 4 * 130 + 3  # several device blocks and a tail of three
    for seed, network, stream in STREAMS:
        args = (np.uint64(seed), np.int64(network), np.uint64(stream))
        blocks = gpu.blocks_for(m, THREADS)
        got, ref = np.zeros(m), np.empty(m)
        gpu.fill_normal_kernel[blocks, THREADS](got, *args, 1.0)
        cpu.fill_normal(ref, *args, 1.0)
        out[f"normal seed={seed} network={network}"] = differing_bits(got, ref)
        got, ref = np.zeros(m), np.empty(m)
        gpu.fill_uniform_kernel[blocks, THREADS](got, *args, 0.0, 1.0)
        cpu.fill_uniform(ref, *args, 0.0, 1.0)
        out[f"uniform seed={seed} network={network}"] = differing_bits(got, ref)
    turns = turns_grid()
    got = np.zeros_like(turns)
    cos_turns_kernel[(turns.size + THREADS - 1) // THREADS, THREADS](turns, got)
    ref = np.array([cpu.cos_turns(t) for t in turns])
    out["cos_turns"] = differing_bits(got, ref)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
