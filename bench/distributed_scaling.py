"""Scaling of sharded runs: a Dask LocalCluster with 1 worker against 2 workers.

    python -m bench.distributed_scaling                  # R1, 32,000 networks, ~1 min
    python -m bench.distributed_scaling --networks 8000  # quicker
    python -m bench.distributed_scaling --smoke          # tiny network, 64 networks

Config R1 (bench.configs; two- and four-point, projected) with --width / --depth changing
its hidden layers. Both clusters run on this machine (``processes=True``, one thread per
worker, one Numba thread per worker) and stay up for the whole run; after a warm-up job
on each (workers load the cached kernels), timed jobs go round robin (bench.harness) --
in-process ``nf.sample(threads=1)``, 1 worker, 2 workers, then again -- on the very same
ensemble (same seed, same shard_size), and the best time of each is reported. The 1- and
2-worker accumulators are checked to be bit-identical. Quote the ratio, never an
absolute rate (noisy shared machines).
"""

import time

import numpy as np

import nnft_fast as nf
from nnft_fast.distributed import sample_sharded
from nnft_fast.run import EnsembleRun

from .configs import R1
from .harness import CallMethod, finish, parser, round_robin, write_json
from .machine import load_average, machine_info, print_machine

INPUT_SEED = 0  # this script's inputs (bench.configs: any seed times the same)


def main(argv=None):
    ap = parser("bench.distributed_scaling", __doc__)
    ap.add_argument("--networks", type=int, default=32_000)
    ap.add_argument("--shards", type=int, default=16, help="shards per job")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--depth", type=int, default=8)
    args = ap.parse_args(argv)
    if args.smoke:
        args.networks, args.shards, args.repeats, args.width, args.depth = 64, 4, 1, 16, 2
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        print("dask[distributed] is not installed (pip install -e '.[dask]'): skipped")
        return 0

    started = time.perf_counter()
    info = machine_info(optional=("dask", "distributed"))
    cfg = R1.resized(depth=args.depth, width=args.width)
    net, x = cfg.network(), cfg.inputs(INPUT_SEED)
    run = EnsembleRun(net, x, 1, method="projected")
    n = args.networks
    shard = -(-n // args.shards)
    print_machine(info)
    print(f"{cfg.describe()}, projected; {n:,} networks in shards of {shard:,}")
    nf.sample(net, x, 64, 0, threads=1, backend="cpu")  # compile / fill the kernel cache

    clusters = {}
    try:
        for workers in (1, 2):
            cluster = LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
            )
            clusters[workers] = (cluster, Client(cluster))
        methods = [
            CallMethod(
                "in_process",
                "in-process nf.sample, 1 thread",
                lambda n: nf.sample(net, x, n, 1, threads=1, backend="cpu"),
                n=n,
                warmup_fn=lambda: None,
            )
        ]
        for workers, (_, client) in clusters.items():
            ex = client.get_executor()
            methods.append(
                CallMethod(
                    f"workers_{workers}",
                    f"LocalCluster, {workers} worker{'s' * (workers > 1)}",
                    lambda n, ex=ex: sample_sharded(run, n, ex, shard_size=shard, threads=1),
                    n=n,
                    warmup_fn=lambda ex=ex, w=workers: sample_sharded(
                        run, 2 * w * 8, ex, shard_size=8, threads=1
                    ),
                )
            )
        for m in methods:  # warm-up: workers load kernels
            m.warmup()
        round_robin(methods, args.repeats, "jobs")
    finally:
        for cluster, client in clusters.values():
            client.close()
            cluster.close()

    one, two = methods[1].result.accumulator, methods[2].result.accumulator
    same = np.array_equal(one.block_sums, two.block_sums) and np.array_equal(
        one.block_counts, two.block_counts
    )
    for m in methods:
        print(
            f"{m.label:31s}: {m.best:10,.0f} networks/s  (best of {args.repeats}, "
            f"{min(m.times):.1f} s)"
        )
    print(
        f"scaling 2 workers / 1 worker   : {methods[2].best / methods[1].best:.2f}x   "
        f"(1 worker / in-process: {methods[1].best / methods[0].best:.2f})"
    )
    print(f"1- and 2-worker accumulators bit-identical: {same}")
    print(
        f"load average (1, 5, 15 min) at the end: {load_average()}  (above ~1 other "
        "processes share the cores and the ratio is understated)"
    )
    elapsed = finish(started)
    write_json(
        args.json,
        "distributed_scaling",
        args,
        info,
        elapsed,
        methods={m.key: m.to_json() for m in methods},
        bit_identical=bool(same),
    )
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
