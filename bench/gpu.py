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

import time

import numpy as np

import nnft_fast as nf
from nnft_fast.run import EnsembleRun

from .configs import GPU_SMOKE, R1, TWO_FOUR, WIDE
from .harness import best_time, finish, parser, timed, write_json
from .machine import machine_info, print_machine

INPUT_SEED = 1  # this script's inputs (bench.configs: any seed times the same)


def check_against_cpu(cfg, init, method, count, observables=TWO_FOUR):
    """Largest relative difference of per-network statistics, CUDA vs CPU."""
    net, x = cfg.network(init), cfg.inputs(INPUT_SEED)
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


def copy_bandwidth(n_bytes=2**30, repeats=5):
    """Device-to-device copy bandwidth in GB/s (read + write counted)."""
    from numba import cuda

    src = cuda.device_array(n_bytes // 8)
    dst = cuda.device_array(n_bytes // 8)

    def copy():
        dst.copy_to_device(src)
        cuda.synchronize()

    copy()
    return 2 * n_bytes / best_time(copy, repeats) / 1e9


def generator_rate(n=2**26, repeats=5):
    """Normals/s of the GPU generator alone (fill_normal_kernel into device memory)."""
    from numba import cuda

    from nnft_fast.kernels.cuda import rng

    out = cuda.device_array(n)
    grid = rng.blocks_for(n)
    args = (np.uint64(1), np.int64(2), np.uint64(3), 1.0)

    def fill():
        rng.fill_normal_kernel[grid, rng.THREADS_PER_BLOCK](out, *args)
        cuda.synchronize()

    fill()
    return n / best_time(fill, repeats)


def rate(cfg, init, method, backend, n_networks, batch_size=None):
    """Networks/s of nf.sample (after a warm-up call that compiles)."""
    net, x = cfg.network(init), cfg.inputs(INPUT_SEED)
    kw = dict(method=method, observables=TWO_FOUR, backend=backend, batch_size=batch_size)
    nf.sample(net, x, 2, 0, **kw)
    elapsed, ens = timed(nf.sample, net, x, n_networks, 0, **kw)
    assert ens.backend == backend and ens.n_networks == n_networks
    return n_networks / elapsed


def main(argv=None):
    args = parser("bench.gpu", __doc__).parse_args(argv)
    from numba import config as numba_config
    from numba import cuda

    if not nf.cuda_available():
        print("no CUDA GPU visible to Numba (and not the simulator): nothing to time")
        return 1
    started = time.perf_counter()
    info = machine_info(optional=("numba-cuda",))
    simulated = bool(numba_config.ENABLE_CUDASIM)
    device = "CUDA simulator" if simulated else cuda.get_current_device().name
    device = device.decode() if isinstance(device, bytes) else device
    print_machine(info)
    print(f"device: {device}")
    if args.smoke:
        timed_runs = ((GPU_SMOKE, "gaussian", "projected", 40, 8),)
    else:
        timed_runs = (
            (R1, "gaussian", "projected", 2_000_000, 2_000),
            (R1, "orthogonal", "projected", 1_000_000, 1_000),
            (R1, "gaussian", "dense", 50_000, 200),
            (WIDE, "gaussian", "projected", 500_000, 500),
        )
    results = {"device": device, "checks": {}, "timings": []}
    print("\n1. correctness, CUDA vs CPU per-network statistics (max relative difference)")
    for cfg, init, method, _, _ in timed_runs:
        worst = check_against_cpu(cfg, init, method, 8 if args.smoke else 64)
        results["checks"][f"{cfg.key} {init} {method}"] = worst
        print(f"   {cfg.key:6s} {init:10s} {method:9s} {worst:.2e}")
        if worst > 1e-10:
            raise SystemExit("CUDA and CPU disagree: not timing")
    ntk_config = GPU_SMOKE if args.smoke else R1.resized(depth=4, width=256)
    worst = check_against_cpu(ntk_config, "gaussian", "dense", 4, observables=TWO_FOUR + ("ntk",))
    results["checks"]["ntk dense"] = worst
    print(f"   NTK (dense, gaussian)            {worst:.2e}")
    if worst > 1e-10:
        raise SystemExit("CUDA and CPU NTKs disagree: not timing")
    if simulated:
        print("\n(simulator: the kernels ran; timings would mean nothing)")
        write_json(args.json, "gpu", args, info, finish(started), **results)
        return 0
    bandwidth = copy_bandwidth()
    gen = generator_rate()
    results.update(copy_bandwidth_gb_s=bandwidth, generator_normals_per_s=gen)
    print(
        f"\n2. device: copy bandwidth {bandwidth:,.0f} GB/s; generator alone "
        f"{gen:.3e} normals/s ({gen * 8 / 1e9 / bandwidth:.0%} of copy bw at 8 B/normal)"
    )
    print("\n3. networks/s (two- and four-point on every layer)")
    print(
        f"   {'config':6s} {'init':10s} {'method':9s} {'GPU':>12s} {'CPU':>10s} "
        f"{'GPU/CPU':>8s} {'normals/s':>10s} {'of copy bw':>10s}"
    )
    for cfg, init, method, n_gpu, n_cpu in timed_runs:
        gpu = rate(cfg, init, method, "cuda", n_gpu)
        cpu = rate(cfg, init, method, "cpu", n_cpu)
        normals = gpu * cfg.normals_per_network(method)
        share = normals * 8 / 1e9 / bandwidth
        results["timings"].append(
            dict(
                config=cfg.key,
                init=init,
                method=method,
                gpu=gpu,
                cpu=cpu,
                normals_per_s=normals,
                copy_bw_share=share,
            )
        )
        print(
            f"   {cfg.key:6s} {init:10s} {method:9s} {gpu:12,.0f} {cpu:10,.0f} "
            f"{gpu / cpu:8.0f} {normals:10.2e} {share:10.1%}"
        )
    write_json(args.json, "gpu", args, info, finish(started), **results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
