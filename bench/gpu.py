"""GPU benchmark: correctness against the CPU first, then networks/s on the GPU.

    python -m bench.gpu                 # R1 and a wide config, ~2 min on an H100
    python -m bench.gpu --json out.json
    NUMBA_ENABLE_CUDASIM=1 python -m bench.gpu --smoke   # tiny configs: checks the script

Needs the ``cuda`` extra and a GPU (``--smoke`` also runs on the CUDA simulator).
Steps:
1. Correctness: per-network statistics of ``backend="cuda"`` against ``backend="cpu"`` on
   the same networks (relative difference <= 1e-10, else the script stops), for every
   timed config; the NTK statistics too on a small config.
2. Device figures: device-to-device copy bandwidth (GB/s) and the GPU generator alone
   (``fill_normal_kernel``, normals/s).
3. Timing: ``nf.sample(..., backend="cuda")`` on a large ensemble after a warm-up batch
   (compilation excluded); the whole loop is timed, and it synchronises (the block sums come
   back to the host after every batch). The CPU figure of the same config is measured in
   the same run (``backend="cpu"``, all cores), and printed as the ratio.
   "normals/s" = networks/s x the normals a network needs (projected: sum_l n_l
   min(n_{l-1}, B); dense: sum_l n_l n_{l-1}); "of copy bw" compares 8 bytes written per
   normal with the measured copy bandwidth, an upper bound on a kernel that writes its
   numbers to memory once.
"""
import argparse
import json
import platform
import time

import numpy as np

import nnft_fast as nf
from nnft_fast.run import EnsembleRun

R1 = dict(widths=(64,) + (512,) * 8, activation="relu", cw=2.0, cb=0.0, n_inputs=4)
WIDE = dict(widths=(64,) + (2048,) * 4, activation="relu", cw=2.0, cb=0.0, n_inputs=4)
SMOKE = dict(widths=(5,) + (12,) * 3, activation="tanh", cw=1.5, cb=0.1, n_inputs=3)
OBSERVABLES = ("two_point", "four_point")


def inputs(config, seed=1):
    return np.random.default_rng(seed).normal(size=(config["n_inputs"], config["widths"][0]))


def network(config, init):
    return nf.Network(config["widths"], config["activation"], init, cw=config["cw"],
                      cb=config["cb"])


def normals_per_network(config, method):
    w, nb = config["widths"], config["n_inputs"]
    if method == "dense":
        return sum(a * b for a, b in zip(w[:-1], w[1:]))
    return sum(b * min(a, nb) for a, b in zip(w[:-1], w[1:]))


def check_against_cpu(config, init, method, count, observables=OBSERVABLES):
    """Largest relative difference of per-network statistics, CUDA vs CPU."""
    net, x = network(config, init), inputs(config)
    kw = dict(method=method, observables=observables)
    cpu = EnsembleRun(net, x, 7, backend="cpu", **kw).compute(100, count)
    gpu = EnsembleRun(net, x, 7, backend="cuda", **kw).compute(100, count)
    worst = 0.0
    for ref, got in ((cpu[0], gpu[0]), (cpu[2], gpu[2])):
        if ref is None:
            continue
        got = got.copy_to_host()
        worst = max(worst, float(np.max(np.abs(got - ref) / (np.abs(ref) + 1e-300))))
    return worst


def copy_bandwidth(n_bytes=2 ** 30, repeats=5):
    """Device-to-device copy bandwidth in GB/s (read + write counted)."""
    from numba import cuda
    src = cuda.device_array(n_bytes // 8)
    dst = cuda.device_array(n_bytes // 8)
    dst.copy_to_device(src)
    cuda.synchronize()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        dst.copy_to_device(src)
        cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n_bytes / best / 1e9


def generator_rate(n=2 ** 26, repeats=5):
    """Normals/s of the GPU generator alone (fill_normal_kernel into device memory)."""
    from numba import cuda

    from nnft_fast.kernels.cuda import rng
    out = cuda.device_array(n)
    grid = rng.blocks_for(n)
    args = (np.uint64(1), np.int64(2), np.uint64(3), 1.0)
    rng.fill_normal_kernel[grid, rng.THREADS_PER_BLOCK](out, *args)
    cuda.synchronize()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        rng.fill_normal_kernel[grid, rng.THREADS_PER_BLOCK](out, *args)
        cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return n / best


def rate(config, init, method, backend, n_networks, batch_size=None):
    """Networks/s of nf.sample (after a warm-up call that compiles)."""
    net, x = network(config, init), inputs(config)
    kw = dict(method=method, observables=OBSERVABLES, backend=backend, batch_size=batch_size)
    nf.sample(net, x, 2, 0, **kw)
    t0 = time.perf_counter()
    ens = nf.sample(net, x, n_networks, 0, **kw)
    elapsed = time.perf_counter() - t0
    assert ens.backend == backend and ens.n_networks == n_networks
    return n_networks / elapsed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny configs (simulator)")
    parser.add_argument("--json", default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    from numba import config as numba_config
    from numba import cuda
    if not nf.cuda_available():
        print("no CUDA GPU visible to Numba (and not the simulator): nothing to time")
        return 1
    simulated = bool(numba_config.ENABLE_CUDASIM)
    device = "CUDA simulator" if simulated else cuda.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device
    print(f"device: {device}; host: {platform.processor() or platform.machine()}, "
          f"nnft_fast {nf.__version__}")
    if args.smoke:
        timed = (("smoke", SMOKE, "gaussian", "projected", 40, 8),)
    else:
        timed = (("R1", R1, "gaussian", "projected", 2_000_000, 2_000),
                 ("R1", R1, "orthogonal", "projected", 1_000_000, 1_000),
                 ("R1", R1, "gaussian", "dense", 50_000, 200),
                 ("wide", WIDE, "gaussian", "projected", 500_000, 500))
    results = {"device": device, "checks": {}, "timings": []}
    print("\n1. correctness, CUDA vs CPU per-network statistics (max relative difference)")
    for name, config, init, method, _, _ in timed:
        worst = check_against_cpu(config, init, method, 8 if args.smoke else 64)
        results["checks"][f"{name} {init} {method}"] = worst
        print(f"   {name:6s} {init:10s} {method:9s} {worst:.2e}")
        if worst > 1e-10:
            raise SystemExit("CUDA and CPU disagree: not timing")
    ntk_config = SMOKE if args.smoke else dict(R1, widths=(64,) + (256,) * 4)
    worst = check_against_cpu(ntk_config, "gaussian", "dense", 4,
                              observables=OBSERVABLES + ("ntk",))
    results["checks"]["ntk dense"] = worst
    print(f"   NTK (dense, gaussian)            {worst:.2e}")
    if worst > 1e-10:
        raise SystemExit("CUDA and CPU NTKs disagree: not timing")
    if simulated:
        print("\n(simulator: the kernels ran; timings would mean nothing)")
        return 0
    bandwidth = copy_bandwidth()
    gen = generator_rate()
    results.update(copy_bandwidth_gb_s=bandwidth, generator_normals_per_s=gen)
    print(f"\n2. device: copy bandwidth {bandwidth:,.0f} GB/s; generator alone "
          f"{gen:.3e} normals/s ({gen * 8 / 1e9 / bandwidth:.0%} of copy bw at 8 B/normal)")
    print("\n3. networks/s (two- and four-point on every layer)")
    print(f"   {'config':6s} {'init':10s} {'method':9s} {'GPU':>12s} {'CPU':>10s} "
          f"{'GPU/CPU':>8s} {'normals/s':>10s} {'of copy bw':>10s}")
    for name, config, init, method, n_gpu, n_cpu in timed:
        gpu = rate(config, init, method, "cuda", n_gpu)
        cpu = rate(config, init, method, "cpu", n_cpu)
        normals = gpu * normals_per_network(config, method)
        share = normals * 8 / 1e9 / bandwidth
        results["timings"].append(dict(config=name, init=init, method=method, gpu=gpu,
                                       cpu=cpu, normals_per_s=normals, copy_bw_share=share))
        print(f"   {name:6s} {init:10s} {method:9s} {gpu:12,.0f} {cpu:10,.0f} "
              f"{gpu / cpu:8.0f} {normals:10.2e} {share:10.1%}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
