"""Run under NUMBA_ENABLE_CUDASIM=1 by test_cuda.py: the CUDA kernels on the simulator
against the CPU kernels. Prints JSON {case: max relative difference}."""
import json
import sys

import numpy as np

import nnft_fast as nf
from nnft_fast.kernels.cpu import rng as cpu
from nnft_fast.kernels.cuda import forward as gpu_forward
from nnft_fast.kernels.cuda import rng as gpu
from nnft_fast.sampling import EnsembleRun

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
    out.update(projected_statistics())
    json.dump(out, sys.stdout)


def projected_statistics():
    """Per-network [G | Q | GG] of the CUDA projected kernel vs the CPU batch kernel."""
    x = np.array([[0.8, -0.5, 1.1, 0.3, -0.9],
                  [-0.2, 1.0, 0.4, -1.2, 0.6],
                  [0.8, -0.5, 1.1, 0.3, -0.9]])        # repeated input: rank(S) = 2
    out = {}
    for widths, act, cb in (((5, 12, 7, 9), "tanh", 0.2), ((5, 150, 6), "relu", 0.0),
                            ((5, 2, 9), "erf", 0.1)):     # width 150 > threads; B > n
        net = nf.Network(widths, act, "gaussian", 1.8, cb)
        run = EnsembleRun(net, x, 11, method="projected", observables=("two_point", "four_point"))
        count = 2
        ref, _, _ = run.compute(5, count)
        xt, w, cw, cbs, _, act_code = run._args
        scratch = max(widths) * x.shape[0]
        got = np.zeros_like(ref)
        gpu_forward.projected_statistics_kernel[count, gpu_forward.THREADS](
            np.int64(5), np.uint64(11), xt, w, cw, cbs, act_code, *run._tables, True, got,
            np.zeros((count, scratch)), np.zeros((count, scratch)), np.zeros((count, scratch)))
        out[f"projected stats {widths} {act}"] = float(np.max(np.abs(got - ref)
                                                            / (np.abs(ref) + 1e-300)))
    return out


if __name__ == "__main__":
    main()
