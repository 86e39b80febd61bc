"""Store benchmarks at R1 (docs/performance.md#r1), side by side in one run.

1. Overhead of streaming the default raw outputs to HDF5: time(sample with store) /
   time(sample in memory), interleaved repeats, best of each. Target <= 1.15.
2. Out-of-core re-analysis read rate from a warm file: stored raw bytes / time of
   ``nf.reanalyze`` (best of 3). Target >= 200 MB/s.
3. File size against payload (not a timing): size of the store file / bytes of its
   datasets as stored (compressed raw chunks, accumulator slots, inputs), at several
   batch sizes and both compressions. Target <= 1.3 at any batch size.

    python -m bench.store_overhead [--networks N] [--repeats R] [--json PATH]
    python -m bench.store_overhead --smoke      # 256 networks, one repeat
"""

import os
import tempfile
import time

import nnft_fast as nf

from .configs import R1
from .harness import CallMethod, best_time, finish, parser, round_robin, write_json
from .machine import machine_info, print_machine

INPUT_SEED = 0  # this script's inputs (bench.configs: any seed times the same)


def store_overhead(init, n_networks, repeats, directory):
    """(in memory, with store): best seconds of interleaved repeats."""
    net, x = R1.network(init), R1.inputs(INPUT_SEED)
    path = os.path.join(directory, f"overhead_{init}.h5")
    memory = CallMethod(
        "memory",
        "in memory",
        lambda n: nf.sample(net, x, n, seed=1),
        n=n_networks,
        warmup_fn=lambda: nf.sample(net, x, 64, seed=1),
    )
    stored = CallMethod(
        "store",
        "with store",
        lambda n: nf.sample(net, x, n, seed=1, store=path, overwrite=True),
        n=n_networks,
        warmup_fn=lambda: nf.sample(net, x, 64, seed=1, store=path, overwrite=True),
    )
    for m in (memory, stored):
        m.warmup()
    round_robin((memory, stored), repeats, f"  {init}")
    return min(memory.times), min(stored.times)


def reanalyze_rate(n_networks, directory):
    net, x = R1.network("orthogonal"), R1.inputs(INPUT_SEED)
    path = os.path.join(directory, "reanalyze.h5")
    last = R1.n_layers
    nf.sample(net, x, n_networks, seed=2, store=path, save={last: R1.widths[last]}, overwrite=True)
    nf.reanalyze(path)  # warm the file cache and compile
    raw_bytes = n_networks * R1.widths[last] * R1.n_inputs * 8
    return raw_bytes / best_time(lambda: nf.reanalyze(path), 3) / 1e6


def size_ratios(n_networks, directory, batch_sizes=(7, 64, 1000, None)):
    """(compression, batch size, file MB, file size / payload) at R1, default raw save."""
    net, x = R1.network("gaussian"), R1.inputs(INPUT_SEED)
    path = os.path.join(directory, "size.h5")
    rows = []
    for compression in ("lzf", "gzip"):
        for batch_size in batch_sizes:
            nf.sample(
                net,
                x,
                n_networks,
                seed=3,
                store=path,
                overwrite=True,
                batch_size=batch_size,
                compression=compression,
            )
            size = os.path.getsize(path)
            rows.append((compression, batch_size, size / 1e6, size / nf.store.payload_bytes(path)))
    return rows


def main(argv=None):
    ap = parser("bench.store_overhead", __doc__)
    ap.add_argument("--networks", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.smoke:
        args.networks, args.repeats = 256, 1
    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    print(f"{R1.describe()}\n")
    figures = {"overhead": {}, "file_size": []}
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            (init, *store_overhead(init, args.networks, args.repeats, tmp))
            for init in ("gaussian", "orthogonal")
        ]
        print("\n| R1 config | in memory (s) | with store (s) | ratio | target |")
        print("|---|---|---|---|---|")
        for init, t_mem, t_sto in rows:
            figures["overhead"][init] = {
                "memory_s": t_mem,
                "store_s": t_sto,
                "ratio": t_sto / t_mem,
            }
            print(
                f"| relu {init}, {args.networks} networks | {t_mem:.2f} | {t_sto:.2f} | "
                f"{t_sto / t_mem:.3f} | <= 1.15 |"
            )
        rate = figures["reanalyze_mb_per_s"] = reanalyze_rate(args.networks // 2, tmp)
        print(
            f"\nreanalyze read rate (layer {R1.n_layers}, all {R1.widths[-1]} neurons, "
            f"float64, lzf): {rate:,.0f} MB/s (target >= 200 MB/s)"
        )
        print(
            f"\n| file size, R1 default save, {args.networks} networks | batch size | "
            "MB | file / payload | target |"
        )
        print("|---|---|---|---|---|")
        for compression, batch_size, mb, ratio in size_ratios(args.networks, tmp):
            figures["file_size"].append(
                {
                    "compression": compression,
                    "batch_size": batch_size,
                    "mb": mb,
                    "file_over_payload": ratio,
                }
            )
            print(
                f"| {compression} | {batch_size or 'default'} | {mb:.2f} | {ratio:.3f} | <= 1.3 |"
            )
    elapsed = finish(started)
    write_json(args.json, "store_overhead", args, info, elapsed, **figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
