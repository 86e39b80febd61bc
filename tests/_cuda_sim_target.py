"""Run under NUMBA_ENABLE_CUDASIM=1 by test_cuda.py: the CUDA random-number kernels on
the simulator, several blocks of 32 threads, against the CPU kernels. Prints JSON
{case: max relative difference}."""
import json
import sys

import numpy as np

from nnft_fast.kernels.cpu import rng as cpu
from nnft_fast.kernels.cuda import rng as gpu

THREADS = 32


def main():
    out = {}
    for m in (1, 3, 130, 517):   # tails of 1-3 numbers; 517 numbers = 130 threads, 5 blocks
        for seed, network, stream in ((7, 123456789012, 9), (2 ** 40 + 3, 5, 17)):
            args = (np.uint64(seed), np.int64(network), np.uint64(stream))
            got, ref = np.zeros(m), np.empty(m)
            gpu.fill_normal_kernel[gpu.blocks_for(m, THREADS), THREADS](got, *args, 1.5)
            cpu.fill_normal(ref, *args, 1.5)
            out[f"normal m={m} seed={seed}"] = float(np.max(np.abs(got - ref) / np.abs(ref)))
            got, ref = np.zeros(m), np.empty(m)
            gpu.fill_uniform_kernel[gpu.blocks_for(m, THREADS), THREADS](got, *args, -2.0, 3.0)
            cpu.fill_uniform(ref, *args, -2.0, 3.0)
            out[f"uniform m={m} seed={seed}"] = float(np.max(np.abs(got - ref)))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
