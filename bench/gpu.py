"""GPU benchmark: correctness against the CPU first, then networks/s on the GPU.

    python -m bench.gpu                 # R1, a wide config, F1 and F2, ~2 min on an H100
    python -m bench.gpu --json out.json --budget 5   # ~5 s of timed run per config and backend
    NUMBA_ENABLE_CUDASIM=1 python -m bench.gpu --smoke   # tiny configs: checks the script

Needs the ``cuda`` extra and a GPU (``--smoke`` also runs on the CUDA simulator).
Steps:
1. Correctness: per-network statistics of ``backend="cuda"`` against ``backend="cpu"`` on
   the same networks (relative difference <= 1e-10, else the script stops), for every
   timed config (the cos-net fields F1, F2 through ``FieldRun``); the NTK statistics too on
   a small config.
2. Device figures: device-to-device copy bandwidth (GB/s) and the GPU generator alone
   (``fill_normal_kernel``, normals/s).
3. Timing: ``nf.sample(..., backend="cuda")`` after a warm-up call (compilation excluded);
   the whole call is timed, and it synchronises (the block sums come back to the host after
   every batch). Each config and backend is sized to ``--budget`` seconds (default 10) by
   pilots growing 8x from one default GPU batch's worth (``n_max`` caps it), so a slow
   kernel cannot run for minutes. The CPU figure of the same config is measured in the same
   run (``backend="cpu"``, all cores), and printed as the ratio.
   "normals/s" = networks/s x the normals a network needs (projected: sum_l n_l
   min(n_{l-1}, B); dense: sum_l n_l n_{l-1}); "of copy bw" compares 8 bytes written per
   normal with the measured copy bandwidth, an upper bound on a kernel that writes its
   numbers to memory once.
"""

import math
import time

import numpy as np

import nnft_fast as nf

from nnft_fast.field_run import FieldRun
from nnft_fast.run import EnsembleRun

from .configs import F1, F2, GPU_SMOKE, R1, TINY_F1, TINY_F2, TWO_FOUR, WIDE
from .harness import best_time, finish, parser, timed, write_json
from .machine import machine_info, print_machine

INPUT_SEED = 1  # this script's inputs (bench.configs: any seed times the same)
CHECK_TOL = 1e-10
DEFAULT_BUDGET_S = 10.0


def is_field(cfg):
    return hasattr(cfg, "dim")


def network_and_inputs(cfg, init):
    """(network, inputs, observables) of an MLP config (inputs of INPUT_SEED, two- and
    four-point) or a cos-net field config (its own points and observables)."""
    if is_field(cfg):
        return cfg.network(), cfg.inputs(), cfg.observables
    return cfg.network(init), cfg.inputs(INPUT_SEED), TWO_FOUR


def check_against_cpu(cfg, init, method, count, observables=None):
    """Largest relative difference of per-network statistics, CUDA vs CPU."""
    net, x, default = network_and_inputs(cfg, init)
    kw = dict(method=method, observables=observables or default)
    kind = FieldRun if is_field(cfg) else EnsembleRun
    cpu = kind(net, x, 7, backend="cpu", **kw).compute(100, count)
    gpu = kind(net, x, 7, backend="cuda", **kw).compute(100, count)
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


def rate(cfg, init, method, backend, budget_s, n_start, n_max):
    """(networks/s, networks timed) of nf.sample after a warm-up call that compiles: pilots
    of n_start, 8 n_start, ... networks until one takes >= budget_s / 8 (or n_max), then
    one call sized to ~budget_s (at most n_max networks)."""
    net, x, observables = network_and_inputs(cfg, init)
    kw = dict(method=method, observables=observables, backend=backend)
    nf.sample(net, x, 2, 0, **kw)
    n = max(2, n_start)
    while True:
        dt = timed(nf.sample, net, x, n, 0, **kw)[0]
        if dt >= budget_s / 8 or n >= n_max:
            break
        n = min(n_max, 8 * n)
    n = max(2, min(n_max, math.ceil(n * budget_s / max(dt, 1e-9))))
    elapsed, ens = timed(nf.sample, net, x, n, 0, **kw)
    assert ens.backend == backend and ens.n_networks == n
    return n / elapsed, n


def main(argv=None):
    ap = parser("bench.gpu", __doc__)
    ap.add_argument(
        "--budget",
        type=float,
        metavar="S",
        help=f"seconds of timed run per config and backend (default {DEFAULT_BUDGET_S:g}; "
        "--smoke 0.2)",
    )
    ap.add_argument("--only", metavar="KEYS", help="comma-separated subset of the config keys")
    args = ap.parse_args(argv)
    budget = args.budget or (0.2 if args.smoke else DEFAULT_BUDGET_S)
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
    # (config, init, method, first pilot and cap on the GPU, the same on the CPU)
    if args.smoke:
        timed_runs = (
            (GPU_SMOKE, "gaussian", "projected", (8, 40), (4, 8)),
            (TINY_F1, None, "field", (8, 40), (4, 8)),
            (TINY_F2, None, "field", (8, 40), (4, 8)),
        )
    else:
        timed_runs = (
            (R1, "gaussian", "projected", (40_000, 20_000_000), (200, 200_000)),
            (R1, "orthogonal", "projected", (20_000, 10_000_000), (100, 100_000)),
            (R1, "gaussian", "dense", (1_000, 1_000_000), (10, 10_000)),
            (WIDE, "gaussian", "projected", (10_000, 5_000_000), (50, 50_000)),
            (F1, None, "field", (1_000, 2_000_000), (100, 100_000)),
            (F2, None, "field", (10_000, 20_000_000), (500, 1_000_000)),
        )
    if args.only:
        keep = set(args.only.split(","))
        timed_runs = tuple(r for r in timed_runs if r[0].key in keep)
    results = {"device": device, "budget_s": budget, "checks": {}, "timings": []}
    print("\n1. correctness, CUDA vs CPU per-network statistics (max relative difference)")
    for cfg, init, method, _, _ in timed_runs:
        worst = check_against_cpu(cfg, init, method, 8 if args.smoke else 64)
        results["checks"][f"{cfg.key} {init or ''} {method}"] = worst
        print(f"   {cfg.key:6s} {init or '-':10s} {method:9s} {worst:.2e}")
        if not worst <= CHECK_TOL:
            write_json(args.json, "gpu", args, info, finish(started), **results)
            raise SystemExit("CUDA and CPU disagree: not timing")
    ntk_config = GPU_SMOKE if args.smoke else R1.resized(depth=4, width=256)
    worst = check_against_cpu(ntk_config, "gaussian", "dense", 4, observables=TWO_FOUR + ("ntk",))
    results["checks"]["ntk dense"] = worst
    print(f"   NTK (dense, gaussian)            {worst:.2e}")
    if not worst <= CHECK_TOL:
        write_json(args.json, "gpu", args, info, finish(started), **results)
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
    print(
        f"\n3. networks/s (MLPs: two- and four-point on every layer; fields: their "
        f"observables), ~{budget:g} s of timed run per config and backend"
    )
    print(
        f"   {'config':6s} {'init':10s} {'method':9s} {'GPU':>12s} {'CPU':>10s} "
        f"{'GPU/CPU':>8s} {'normals/s':>10s} {'of copy bw':>10s}"
    )
    for cfg, init, method, (gpu_start, gpu_max), (cpu_start, cpu_max) in timed_runs:
        gpu, n_gpu = rate(cfg, init, method, "cuda", budget, gpu_start, gpu_max)
        cpu, n_cpu = rate(cfg, init, method, "cpu", budget, cpu_start, cpu_max)
        if is_field(cfg):
            normals = share = None  # cosines, not normals, are a field's work
            cosines = gpu * cfg.cosines_per_network
        else:
            normals = gpu * cfg.normals_per_network(method)
            share, cosines = normals * 8 / 1e9 / bandwidth, None
        results["timings"].append(
            dict(
                config=cfg.key,
                init=init,
                method=method,
                gpu=gpu,
                cpu=cpu,
                gpu_networks=n_gpu,
                cpu_networks=n_cpu,
                normals_per_s=normals,
                copy_bw_share=share,
                cosines_per_s=cosines,
            )
        )
        tail = f"{cosines:10.2e} cosines/s" if normals is None else f"{normals:10.2e} {share:10.1%}"
        print(
            f"   {cfg.key:6s} {init or '-':10s} {method:9s} {gpu:12,.0f} {cpu:10,.0f} "
            f"{gpu / cpu:8.1f} {tail}"
        )
    write_json(args.json, "gpu", args, info, finish(started), **results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
