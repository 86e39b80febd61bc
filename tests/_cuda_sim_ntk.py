"""Run under NUMBA_ENABLE_CUDASIM=1 by test_cuda_ntk.py: the CUDA NTK kernels on the
simulator against the CPU kernels. Prints JSON {case: max difference relative to the
largest reference entry}; cases named "control ..." compare with a different network or
learning rate (or, for residual networks, with the network without its residual
connections) and must differ. The per-network NTK kernel and the statistics kernel of a
case run on different block sizes (THREADS threads, one warp; swapped from case to
case), so every kernel meets every block size and the block size changes no network."""

import json
import sys

# The simulator runs a block's threads as Python threads, polled by the main thread; a
# short GIL switch interval makes each syncthreads ~10x faster than the default 5 ms.
sys.setswitchinterval(1e-4)

import numpy as np
from _cuda_sim_target import lock_shared_arrays

import nnft_fast as nf
from nnft_fast.kernels.cpu import ntk as cpu_ntk
from nnft_fast.kernels.cuda import ntk as gpu_ntk
from nnft_fast.kernels.cuda.block import THREADS, WARP
from nnft_fast.ntk import ntk_statistics_size
from nnft_fast.run import EnsembleRun

FIRST, COUNT, SEED = 5, 2, 11
X3 = np.array([[0.8, -0.5, 1.1], [-0.2, 1.0, 0.4], [0.8, -0.5, 1.1]])  # repeated input: rank(S) = 2
X2 = X3[:2]
# (widths, activation, cb, init, method, inputs); widths > THREADS = 8 on the simulator
CASES = (
    ((3, 10, 6, 5), "tanh", 0.2, "gaussian", "dense", X3),
    ((3, 6, 9), "relu", 0.0, "uniform", "dense", X3),
    ((3, 5, 9, 4), "tanh", 0.1, "orthogonal", "dense", X3),
    ((3, 10, 7, 5), "tanh", 0.3, "gaussian", "projected", X3),
    ((3, 2, 9), "erf", 0.1, "gaussian", "projected", X3),  # B > n_1
    ((3, 11, 6, 7), "tanh", 0.2, "orthogonal", "projected", X2),
    ((3, 5, 12), "relu", 0.1, "orthogonal", "projected", X3),
    # narrow networks (on a GPU: no wider than a warp)
    ((3, 16, 16, 2), "tanh", 0.2, "gaussian", "projected", X3),
    ((3, 8, 8), "relu", 0.1, "orthogonal", "dense", X3),
)
# residual networks: (widths, activation, cb, init, method, inputs, xi, gamma)
RESIDUAL_CASES = (
    ((3, 10, 10, 10), "tanh", 0.2, "gaussian", "dense", X3, 0.7, 0.8),
    ((3, 5, 9, 9), "tanh", 0.1, "orthogonal", "dense", X3, [0, 0, 0.6], [1, 1, 0.9]),
    ((3, 10, 10, 10), "tanh", 0.3, "gaussian", "projected", X3, 0.7, 0.8),  # rank(S) = 2
    ((3, 11, 11, 11), "tanh", 0.2, "orthogonal", "projected", X2, 0.6, 0.9),
)


def rel(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def gpu_ntk_samples(run, lambda_b, lambda_w, threads):
    args = run.kernel_args
    xt, widths, cw, cb, init_code, act_code = args.network_args
    nb, r = xt.shape[1], run.ntk.readouts
    layout = gpu_ntk.ntk_work_layout(
        args.method_code, init_code, widths, nb, r, residual=bool(np.any(args.xi != 0.0))
    )
    out = np.zeros((COUNT, len(widths) - 1, r, r, nb, nb))
    gpu_ntk.ntk_kernel[COUNT, threads](
        args.method_code,
        np.int64(FIRST),
        np.uint64(SEED),
        xt,
        widths,
        cw,
        cb,
        init_code,
        act_code,
        lambda_b,
        lambda_w,
        out,
        np.full((COUNT, layout[-1]), np.nan),
        layout,
        args.xi,
        args.gamma,
    )
    return out


def cpu_ntk_samples(run, lambda_w, xi, gamma):
    """The CPU ``batch_ntk`` of ``run``'s networks at lambda_b = 0.7 and ``lambda_w``."""
    args = run.kernel_args
    nb, n_layers, r = args.xt.shape[1], args.n_layers, run.ntk.readouts
    out = np.empty((COUNT, n_layers, r, r, nb, nb))
    cpu_ntk.batch_ntk(
        args.method_code,
        np.int64(FIRST),
        COUNT,
        np.uint64(SEED),
        *args.network_args,
        0.7,
        lambda_w,
        args.offsets,
        out,
        xi,
        gamma,
    )
    return out


def compare(threads, widths, act, cb, init, method, x, xi=0.0, gamma=1.0):
    """{case: difference} of one network configuration: the NTK kernel (networks FIRST,
    FIRST + 1) on blocks of threads[0] threads, the statistics kernel (network FIRST + 1)
    on blocks of threads[1]."""
    net = nf.Network(widths, act, init, 1.8, cb, xi=xi, gamma=gamma)
    run = EnsembleRun(
        net,
        x,
        SEED,
        method=method,
        lambda_b=0.7,
        lambda_w=1.3,
        observables=("two_point", "four_point", "ntk"),
        save={len(widths) - 1: 2},
        ntk_readouts=2,
    )
    assert run.method == method
    args = run.kernel_args
    xt, w, cw, cbs, init_code, act_code = args.network_args
    nb, n_layers, r = x.shape[0], len(widths) - 1, run.ntk.readouts
    name = f"{method} {init} {widths} {act} B={nb}"
    if net.is_residual:
        name += f" xi={xi} gamma={gamma}"
    name += f" threads={threads[0]},{threads[1]}"
    out = {}

    ref = {lambda_w: cpu_ntk_samples(run, lambda_w, args.xi, args.gamma) for lambda_w in (1.3, 2.0)}
    got = gpu_ntk_samples(run, 0.7, 1.3, threads[0])
    out[f"ntk {name}"] = rel(got, ref[1.3])
    out[f"control network {name}"] = rel(got[1], ref[1.3][0])
    out[f"control lambda {name}"] = rel(got, ref[2.0])
    if net.is_residual:  # the same weights without the residual connections
        plain = cpu_ntk_samples(run, 1.3, np.zeros_like(args.xi), np.ones_like(args.gamma))
        out[f"control residual {name}"] = rel(got, plain)

    stats = np.empty((1, n_layers, run.layout.n_stat))
    ntk_stats = np.empty((1, n_layers, ntk_statistics_size(nb)))
    raw = np.empty((1, 2 * nb))
    cpu_ntk.batch_ntk_statistics(
        args.method_code,
        np.int64(FIRST + 1),
        1,
        np.uint64(SEED),
        xt,
        w,
        cw,
        cbs,
        init_code,
        act_code,
        0.7,
        1.3,
        args.offsets,
        *args.tables,
        True,
        stats,
        ntk_stats,
        r,
        args.save_layers,
        args.save_neurons,
        raw,
        args.xi,
        args.gamma,
    )
    layout = gpu_ntk.ntk_work_layout(
        args.method_code, init_code, w, nb, r, residual=bool(np.any(args.xi != 0.0))
    )
    got = np.zeros_like(stats)
    got_ntk = np.zeros((1, n_layers, ntk_statistics_size(nb)))
    got_raw = np.zeros_like(raw)
    gpu_ntk.ntk_statistics_kernel[1, threads[1]](
        args.method_code,
        np.int64(FIRST + 1),
        np.uint64(SEED),
        xt,
        w,
        cw,
        cbs,
        init_code,
        act_code,
        0.7,
        1.3,
        *args.tables,
        True,
        got,
        got_ntk,
        r,
        args.save_layers,
        args.save_neurons,
        got_raw,
        np.full((1, layout[-1]), np.nan),
        layout,
        args.xi,
        args.gamma,
    )
    out[f"stats {name}"] = rel(got, stats)
    out[f"ntk_stats {name}"] = rel(got_ntk, ntk_stats)
    out[f"raw {name}"] = rel(got_raw, raw)
    return out


def main():
    lock_shared_arrays()
    out = {}
    for index, case in enumerate(CASES + RESIDUAL_CASES):
        out.update(compare(((THREADS, WARP), (WARP, THREADS))[index % 2], *case))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
