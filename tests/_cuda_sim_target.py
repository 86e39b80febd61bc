"""Run under NUMBA_ENABLE_CUDASIM=1 by test_cuda.py: the CUDA kernels on the simulator
against the CPU kernels. Prints JSON {case: max relative difference}."""

import json
import os
import sys
import tempfile
import threading
import traceback

# The simulator runs a block's threads as Python threads; a short GIL switch interval
# makes each syncthreads ~10x faster than with the default 5 ms.
sys.setswitchinterval(1e-4)

import numpy as np  # noqa: E402
from numba import cuda, float64  # noqa: E402

import nnft_fast as nf
from nnft_fast import store
from nnft_fast.kernels.cpu import rng as cpu
from nnft_fast.kernels.cpu.haar import batch_haar_matrices
from nnft_fast.kernels.cpu.moments import add_to_blocks
from nnft_fast.kernels.cuda import forward as gpu_forward
from nnft_fast.kernels.cuda import haar as gpu_haar
from nnft_fast.kernels.cuda import moments as gpu_moments
from nnft_fast.kernels.cuda import rng as gpu
from nnft_fast.gpu_engine import CudaEngine
from nnft_fast.kernels.cuda.block import THREADS, WARP, block_max, block_sum
from nnft_fast.run import EnsembleRun

RNG_THREADS = 32  # several blocks of the stream kernels
BLOCK_SIZES = tuple(WARP << k for k in range((THREADS // WARP).bit_length()))  # WARP..THREADS
X = np.array(
    [[0.8, -0.5, 1.1, 0.3, -0.9], [-0.2, 1.0, 0.4, -1.2, 0.6], [0.8, -0.5, 1.1, 0.3, -0.9]]
)  # repeated input: rank(S) = 2


def lock_shared_arrays():
    """Make the simulator's shared-array allocation atomic. ``FakeCUDAShared.array``
    looks an array up by its call site and creates it if missing, unlocked: a thread
    switch between the two hands threads of one block different "shared" arrays, and a
    thread then reads another's uninitialised copy (a reflector or a sum off, as once in
    a haar (3, 7) case). The same lookup (file and line of the call), under a lock."""
    from numba.core import types
    from numba.cuda.simulator import kernelapi
    from numba.np import numpy_support

    if not hasattr(kernelapi, "FakeCUDAShared"):  # on a real GPU: nothing to fix
        return
    lock = threading.Lock()
    unlocked = kernelapi.FakeCUDAShared.array

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory: not keyed by site
            return unlocked(self, shape, dtype, alignment)
        site = tuple(traceback.extract_stack(sys._getframe(1), limit=1)[0])[:2]
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        with lock:
            if site not in self._allocations:
                self._allocations[site] = np.empty(shape, dtype)
            return self._allocations[site]

    kernelapi.FakeCUDAShared.array = array


def main():
    lock_shared_arrays()
    out = reductions()
    for m in (1, 3, 130, 517):  # tails of 1-3 numbers; 517 numbers = 130 threads, 5 blocks
        for seed, network, stream in ((7, 123456789012, 9), (2**40 + 3, 5, 17)):
            args = (np.uint64(seed), np.int64(network), np.uint64(stream))
            got, ref = np.zeros(m), np.empty(m)
            gpu.fill_normal_kernel[gpu.blocks_for(m, RNG_THREADS), RNG_THREADS](got, *args, 1.5)
            cpu.fill_normal(ref, *args, 1.5)
            out[f"normal m={m} seed={seed}"] = float(np.max(np.abs(got - ref) / np.abs(ref)))
            got, ref = np.zeros(m), np.empty(m)
            blocks = gpu.blocks_for(m, RNG_THREADS)
            gpu.fill_uniform_kernel[blocks, RNG_THREADS](got, *args, -2.0, 3.0)
            cpu.fill_uniform(ref, *args, -2.0, 3.0)
            out[f"uniform m={m} seed={seed}"] = float(np.max(np.abs(got - ref)))
    out.update(forward_statistics())
    out.update(block_sizes())
    out.update(extreme_inputs())
    out.update(nonfinite_rows())
    out.update(haar_matrices())
    out.update(dispatch())
    json.dump(out, sys.stdout)


@cuda.jit
def reduce_kernel(values, sums, maxima):
    """sums[t], maxima[t] = block_sum, block_max of values[t] over the block, thread t."""
    shared = cuda.shared.array(THREADS, float64)
    t = cuda.threadIdx.x
    sums[t] = block_sum(values[t], shared)
    maxima[t] = block_max(values[t], shared)


def fixed_order_sum(values):
    """The order ``block_sum`` promises: each warp's tree (lane i + w into lane i for
    w = WARP/2, ..., 1), then the warps' partials in warp order."""
    total = None
    for start in range(0, values.size, WARP):
        lanes = list(values[start : start + WARP])
        width = WARP // 2
        while width > 0:
            for i in range(width):
                lanes[i] = lanes[i] + lanes[i + width]
            width //= 2
        total = lanes[0] if total is None else total + lanes[0]
    return total


def reductions():
    """block_sum and block_max at every block size, on values of magnitudes 1e-8 .. 1e8
    (the order of a sum shows in its rounding): every thread gets the sum in the fixed
    order, bit for bit, and the largest value."""
    rng = np.random.default_rng(5)
    out = {}
    for threads in BLOCK_SIZES:
        values = rng.normal(size=threads) * 10.0 ** rng.integers(-8, 9, size=threads)
        sums, maxima = np.zeros(threads), np.zeros(threads)
        reduce_kernel[1, threads](values, sums, maxima)
        out[f"reduce sum threads={threads}"] = float(np.max(np.abs(sums - fixed_order_sum(values))))
        out[f"reduce max threads={threads}"] = float(np.max(np.abs(maxima - values.max())))
    return out


def forward_statistics():
    """Per-network [G | Q | GG] and raw outputs of the CUDA statistics kernel vs the CPU
    batch kernel, every method and weight law (every other case on blocks of one warp),
    and the device block accumulation."""
    out = {}
    plain = {"xi": 0.0, "gamma": 1.0}
    cases = (
        ((5, 12, 7, 9), "tanh", 0.2, "gaussian", "projected", plain),
        ((5, 150, 6), "relu", 0.0, "gaussian", "projected", plain),  # width > threads
        ((5, 2, 9), "erf", 0.1, "gaussian", "projected", plain),  # B > n
        ((5, 7, 4, 9), "tanh", 0.3, "orthogonal", "projected", plain),
        ((5, 6, 9, 4), "relu", 0.1, "gaussian", "dense", plain),
        ((5, 9, 4), "tanh", 0.0, "uniform", "dense", plain),
        ((5, 3, 8, 6), "relu", 0.2, "orthogonal", "dense", plain),
        # residual connections (docs/conventions.md#residual); a gamma-only layer
        ((5, 12, 12, 12), "tanh", 0.2, "gaussian", "projected", {"xi": 0.7, "gamma": 0.8}),
        ((5, 6, 6, 6), "tanh", 0.1, "orthogonal", "projected", {"xi": [0, 0.6, 0], "gamma": 0.9}),
        ((5, 9, 9, 4), "relu", 0.1, "uniform", "dense", {"xi": -0.5, "gamma": 1.2}),
        ((5, 6, 6, 6), "erf", 0.0, "orthogonal", "dense", {"xi": 0.0, "gamma": [1, 0.5, 2]}),
    )
    for index, (widths, act, cb, init, method, residual) in enumerate(cases):
        net = nf.Network(widths, act, init, 1.8, cb, **residual)
        threads = (THREADS, WARP)[index % 2]
        ref, ref_raw, got, raw = gpu_and_cpu(statistics_run(net, X, method), threads=threads)
        name = f"stats {method} {init} {widths} {act}{' residual' if net.is_residual else ''}"
        name += f" threads={threads}"
        out[name] = float(np.max(np.abs(got - ref) / (np.abs(ref) + 1e-300)))
        out[name + " raw"] = float(np.max(np.abs(raw.reshape(ref_raw[0].shape) - ref_raw[0])))
        sums, counts = np.full((4,) + ref.shape[1:], 0.5), np.arange(4)
        want_sums, want_counts = sums.copy(), counts.copy()
        # 3 blocks of 16 threads, fewer than the elements: threads stride over the grid
        gpu_moments.add_to_blocks_kernel[3, 16](got, np.int64(5), sums, counts)
        add_to_blocks(got, np.int64(5), want_sums, want_counts)
        out[name + " blocks"] = float(
            np.max(np.abs(sums - want_sums)) + np.max(np.abs(counts - want_counts))
        )
    return out


def statistics_run(net, x, method):
    """The CPU run of ``net`` on inputs ``x`` (seed 11) with two- and four-point
    statistics and the raw outputs of (at most) 2 neurons of its last layer."""
    return EnsembleRun(
        net,
        x,
        11,
        method=method,
        observables=("two_point", "four_point"),
        save={net.n_layers: min(2, net.widths[-1])},
        backend="cpu",
    )


def block_sizes():
    """Narrow networks (on a GPU no wider than a warp) and one wider than a GPU warp, at
    every block size from one warp to THREADS: the CPU's per-network statistics and raw
    outputs each time, and the block size does not change which network is which
    (networks 5, 6, 7 against each other across block sizes)."""
    x = X[:, :3]
    cases = (
        ((3, 16, 16, 1), "tanh", 0.1, "gaussian", "dense"),
        ((3, 8, 8), "relu", 0.2, "orthogonal", "projected"),
        ((3, 40, 6), "tanh", 0.0, "gaussian", "projected"),
    )
    out = {}
    for widths, act, cb, init, method in cases:
        run = statistics_run(nf.Network(widths, act, init, 1.8, cb), x, method)
        name = f"{method} {init} {widths} {act}"
        first = None
        for threads in BLOCK_SIZES:
            ref, ref_raw, got, raw = gpu_and_cpu(run, threads=threads)
            out[f"stats {name} threads={threads}"] = float(
                np.max(np.abs(got - ref) / (np.abs(ref) + 1e-300))
            )
            out[f"raw {name} threads={threads}"] = float(
                np.max(np.abs(raw.reshape(ref_raw[0].shape) - ref_raw[0]))
            )
            first = got if first is None else first
            out[f"blocksize {name} threads={threads}"] = float(
                np.max(np.abs(got - first) / (np.abs(first) + 1e-300))
            )
    return out


def gpu_and_cpu(run, first=5, count=3, threads=THREADS):
    """(CPU statistics, CPU raw outputs, GPU statistics, GPU raw rows) of networks
    first .. first + count - 1 of ``run``: the CUDA statistics kernel on blocks of
    ``threads`` threads vs the CPU batch."""
    ref, ref_raw, _ = run.compute(first, count)
    args = run.kernel_args
    xt, widths, cw, cbs, init_code, act_code = args.network_args
    residual = bool(np.any(args.xi != 0.0))
    layout = gpu_forward.work_layout(args.method_code, init_code, widths, xt.shape[1], residual)
    got = np.zeros_like(ref)
    raw = np.zeros((count, int(args.save_neurons.sum()) * xt.shape[1]))
    gpu_moments.statistics_kernel[count, threads](
        args.method_code,
        np.int64(first),
        np.uint64(run.seed),
        xt,
        widths,
        cw,
        cbs,
        init_code,
        act_code,
        *args.tables,
        run.layout.four_point,
        got,
        args.save_layers,
        args.save_neurons,
        raw,
        np.zeros((count, layout[-1])),
        layout,
        args.xi,
        args.gamma,
    )
    return ref, ref_raw, got, raw


def extreme_inputs():
    """Raw preactivations of projected ReLU nets on inputs 2^520 and 2^-520 times
    ordinary ones (squared norms over- and underflow float64): GPU vs CPU, relative to
    the largest entry, and the CPU's equal 2^+-520 times the ordinary inputs' (the
    power-of-two column scaling is exact); inf unless finite and nonzero."""
    x = np.array([[0.8, -0.5, 1.1, 0.3, -0.9], [-0.2, 1.0, 0.4, -1.2, 0.6]])
    out = {}
    for widths, init in (((5, 12, 9), "gaussian"), ((5, 7, 9), "orthogonal")):
        net = nf.Network(widths, "relu", init, 1.8, 0.0)
        save = {1: 2, 2: 2}
        plain = EnsembleRun(
            net, x, 11, method="projected", observables=("two_point",), save=save, backend="cpu"
        )
        ordinary = np.concatenate([r.reshape(3, -1) for r in plain.compute(5, 3)[1]], axis=1)
        for e in (520, -520):
            run = EnsembleRun(
                net,
                x * 2.0**e,
                11,
                method="projected",
                observables=("two_point",),
                save=save,
                backend="cpu",
            )
            _, ref_raw, _, raw = gpu_and_cpu(run)
            ref = np.concatenate([r.reshape(3, -1) for r in ref_raw], axis=1)
            exact = np.ldexp(ordinary, e)
            out[f"extreme {init} 2^{e}"] = max(
                relative_to_largest(raw, ref), relative_to_largest(ref, exact)
            )
    return out


def relative_to_largest(got, ref):
    """max |got - ref| / max |ref|; inf unless ref's largest entry is finite and nonzero."""
    largest = np.max(np.abs(ref))
    if not (np.isfinite(largest) and largest > 0):
        return float("inf")
    return float(np.max(np.abs(got - ref)) / largest)


def nonfinite_rows():
    """The device finiteness flags of per-network statistics vs NumPy's, with inf, -inf
    and NaN planted in some (network, layer) rows."""
    stats = np.random.default_rng(3).normal(size=(5, 4, 7))
    stats[0, 1, 3] = np.inf
    stats[2, 0, 6] = -np.inf
    stats[4, 3, 0] = np.nan
    bad = np.zeros((5, 4), np.uint8)
    gpu_moments.nonfinite_rows_kernel[1, 32](stats, bad)
    return {"nonfinite rows": float(np.sum(bad.astype(bool) != ~np.isfinite(stats).all(axis=2)))}


def haar_matrices():
    """The batched Haar kernel against the CPU's, tall and wide, on blocks of THREADS
    threads and of one warp."""
    out = {}
    for shape, threads in (((7, 3), THREADS), ((3, 7), WARP), ((5, 5), THREADS)):
        ref = np.empty((3,) + shape)
        batch_haar_matrices(np.uint64(4), np.int64(2), np.uint64(9), ref)
        got = np.zeros_like(ref)
        work = np.zeros((3, gpu_haar.haar_work_size(*shape)))
        gpu_haar.haar_matrices_kernel[3, threads](
            np.uint64(4), np.int64(2), np.uint64(9), got, work
        )
        out[f"haar {shape} threads={threads}"] = float(np.max(np.abs(got - ref)))
    return out


def dispatch():
    """nf.sample(backend="cuda") end to end against backend="cpu": accumulators (a narrow
    network's on blocks of one warp), raw outputs in a store, provenance, and a run
    started on the GPU finished on the CPU."""
    x = np.array([[0.8, -0.5, 1.1, 0.3], [-0.2, 1.0, 0.4, -1.2]])
    net = nf.Network((4, 10, 6), "tanh", "gaussian", 1.5, 0.1)
    kw = dict(observables=("two_point", "four_point"), batch_size=3)
    out = {}
    gpu = nf.sample(net, x, 7, 3, backend="cuda", **kw)
    cpu = nf.sample(net, x, 7, 3, backend="cpu", **kw)
    assert gpu.backend == "cuda" and cpu.backend == "cpu"
    assert np.array_equal(gpu.accumulator.block_counts, cpu.accumulator.block_counts)
    out["dispatch sums stats"] = float(
        np.max(np.abs(gpu.accumulator.block_sums - cpu.accumulator.block_sums))
    )
    residual = nf.Network((4, 6, 6), "tanh", "gaussian", 1.5, 0.1, xi=0.6, gamma=0.9)
    sums = [
        nf.sample(residual, x, 7, 3, backend=b, **kw).accumulator.block_sums
        for b in ("cuda", "cpu")
    ]
    out["dispatch residual sums stats"] = float(np.max(np.abs(sums[0] - sums[1])))
    ntk = dict(kw, observables=("two_point", "four_point", "ntk"), lambda_w=0.8)
    narrow = nf.Network((4, 4, 3), "tanh", "orthogonal", 1.5, 0.1)  # one warp per network
    engine = CudaEngine(EnsembleRun(narrow, x, 5, observables=ntk["observables"]).kernel_args)
    assert engine.threads == WARP, engine.threads
    narrow_runs = [nf.sample(narrow, x, 5, 3, backend=b, **ntk) for b in ("cuda", "cpu")]
    for kind in ("accumulator", "ntk_accumulator"):
        sums = [getattr(r, kind).block_sums for r in narrow_runs]
        out[f"dispatch narrow {kind}"] = float(np.max(np.abs(sums[0] - sums[1])))
    ntk_sums = [  # the residual work row (u kept for the skip of the projected backward)
        nf.sample(residual, x, 5, 3, backend=b, method="projected", **ntk).ntk_accumulator
        for b in ("cuda", "cpu")
    ]
    out["dispatch residual ntk sums"] = float(
        np.max(np.abs(ntk_sums[0].block_sums - ntk_sums[1].block_sums))
    )
    # K ~ 1e100^l: z^4 overflows from layer 2 (the simulator's math.exp would raise)
    exploding = nf.Network((4, 6, 6, 6), "relu", "gaussian", 1e100, 0.0)
    counts = [nf.sample(exploding, x, 7, 3, backend=b, **kw).nonfinite for b in ("cuda", "cpu")]
    assert counts[1][0] == 0 and counts[1][-1] > 0, counts
    out["dispatch nonfinite"] = float(np.max(np.abs(counts[0] - counts[1])))
    with tempfile.TemporaryDirectory() as tmp:
        paths = {b: os.path.join(tmp, f"{b}.h5") for b in ("cuda", "cpu", "mixed")}
        for b in ("cuda", "cpu"):
            nf.sample(net, x, 7, 3, backend=b, store=paths[b], save={1: 3}, **kw)
        raw = {b: store.read_raw(paths[b], 1) for b in ("cuda", "cpu")}
        out["dispatch store raw"] = float(np.max(np.abs(raw["cuda"] - raw["cpu"])))

        def stop(done, total):
            if done >= 3:
                raise KeyboardInterrupt

        try:
            nf.sample(
                net, x, 7, 3, backend="cuda", store=paths["mixed"], save={1: 3}, progress=stop, **kw
            )
        except KeyboardInterrupt:
            pass
        mixed = store.resume(paths["mixed"], backend="cpu")
        assert mixed.backend == "cpu,cuda", mixed.backend
        assert store.open_store(paths["cuda"]).backend == "cuda"
        out["dispatch resumed stats"] = float(
            np.max(np.abs(mixed.accumulator.block_sums - cpu.accumulator.block_sums))
        )
    return out


if __name__ == "__main__":
    main()
