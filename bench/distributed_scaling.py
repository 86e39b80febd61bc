"""Scaling of sharded runs: a Dask LocalCluster with 1 worker against 2 workers.

    python -m bench.distributed_scaling                  # R1, 32,000 networks, ~1 min
    python -m bench.distributed_scaling --networks 8000  # quicker

Config R1 (docs/performance.md#r1: n_0 = 64, eight layers of width 512, B = 4, ReLU, C_W = 2,
C_b = 0, two- and four-point, projected). Both clusters run on this machine
(``processes=True``, one thread per worker, one Numba thread per worker) and stay up for
the whole run; after a warm-up job on each (workers load the cached kernels), timed jobs
go round robin -- in-process ``nf.sample(threads=1)``, 1 worker, 2 workers, then again --
on the very same ensemble (same seed, same shard_size), and the best time of each is
reported. The 1- and 2-worker accumulators are checked to
be bit-identical. Quote the ratio, never an absolute rate (noisy shared machines).
"""
import argparse
import os
import platform
import time

import numpy as np

import nnft_fast as nf
from nnft_fast.distributed import sample_sharded
from nnft_fast.run import EnsembleRun


def r1_run(width, depth, seed):
    x = np.random.default_rng(0).standard_normal((4, 64))
    net = nf.Network((64,) + (width,) * depth, "relu", "gaussian", cw=2.0, cb=0.0)
    return net, x, EnsembleRun(net, x, seed, method="projected")


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=32_000)
    parser.add_argument("--shards", type=int, default=16, help="shards per job")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--depth", type=int, default=8)
    args = parser.parse_args(argv)
    from dask.distributed import Client, LocalCluster

    net, x, run = r1_run(args.width, args.depth, seed=1)
    n = args.networks
    shard = -(-n // args.shards)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; widths {net.widths}, B = 4, ReLU, projected; "
          f"{n:,} networks in shards of {shard:,}")
    nf.sample(net, x, 64, 0, threads=1, backend="cpu")          # compile / fill the kernel cache

    clusters = {}
    try:
        for workers in (1, 2):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
            clusters[workers] = (cluster, Client(cluster))
        for workers, (_, client) in clusters.items():   # warm-up: workers load kernels
            sample_sharded(run, 2 * workers * 8, client.get_executor(), shard_size=8,
                           threads=1)
        best = {0: float("inf"), 1: float("inf"), 2: float("inf")}
        results = {}
        for _ in range(args.repeats):
            seconds, _ = timed(lambda: nf.sample(net, x, n, 1, threads=1, backend="cpu"))
            best[0] = min(best[0], seconds)
            for workers, (_, client) in clusters.items():
                seconds, ens = timed(lambda c=client: sample_sharded(
                    run, n, c.get_executor(), shard_size=shard, threads=1))
                best[workers] = min(best[workers], seconds)
                results[workers] = ens
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()

    same = (np.array_equal(results[1].accumulator.block_sums,
                           results[2].accumulator.block_sums)
            and np.array_equal(results[1].accumulator.block_counts,
                               results[2].accumulator.block_counts))
    rate = {w: n / best[w] for w in best}
    print(f"in-process nf.sample, 1 thread : {rate[0]:10,.0f} networks/s  "
          f"(best of {args.repeats}, {best[0]:.1f} s)")
    print(f"LocalCluster, 1 worker         : {rate[1]:10,.0f} networks/s  "
          f"(best of {args.repeats}, {best[1]:.1f} s)")
    print(f"LocalCluster, 2 workers        : {rate[2]:10,.0f} networks/s  "
          f"(best of {args.repeats}, {best[2]:.1f} s)")
    print(f"scaling 2 workers / 1 worker   : {rate[2] / rate[1]:.2f}x   "
          f"(1 worker / in-process: {rate[1] / rate[0]:.2f})")
    print(f"1- and 2-worker accumulators bit-identical: {same}")
    print("load average (1, 5, 15 min) at the end: "
          + ", ".join(f"{v:.1f}" for v in os.getloadavg())
          + "  (above ~1 other processes share the cores and the ratio is understated)")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
