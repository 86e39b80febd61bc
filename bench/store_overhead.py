"""Store benchmarks at R1 (docs/performance.md#r1), side by side in one run.

1. Overhead of streaming the default raw outputs to HDF5: time(sample with store) /
   time(sample in memory), interleaved repeats, best of each. Target <= 1.15.
2. Out-of-core re-analysis read rate from a warm file: stored raw bytes / time of
   ``nf.reanalyze``. Target >= 200 MB/s.
3. File size against payload (not a timing): size of the store file / bytes of its
   datasets as stored (compressed raw chunks, accumulator slots, inputs), at several
   batch sizes and both compressions. Target <= 1.3 at any batch size.

Run: python -m bench.store_overhead [--networks N] [--repeats R]
"""
import argparse
import os
import tempfile
import time

import numpy as np

import nnft_fast as nf

R1_WIDTHS = (64,) + (512,) * 8
R1_INPUTS = 4


def r1_network(init):
    return nf.Network(R1_WIDTHS, "relu", init, cw=2.0, cb=0.0)


def r1_inputs():
    return np.random.default_rng(0).standard_normal((R1_INPUTS, R1_WIDTHS[0]))


def time_call(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def store_overhead(init, n_networks, repeats, directory):
    net, x = r1_network(init), r1_inputs()
    path = os.path.join(directory, f"overhead_{init}.h5")
    nf.sample(net, x, 64, seed=1)  # compile / warm up
    nf.sample(net, x, 64, seed=1, store=path, overwrite=True)
    memory, stored = [], []
    for _ in range(repeats):
        memory.append(time_call(lambda: nf.sample(net, x, n_networks, seed=1)))
        stored.append(time_call(lambda: nf.sample(net, x, n_networks, seed=1, store=path,
                                                  overwrite=True)))
    return min(memory), min(stored)


def reanalyze_rate(n_networks, directory):
    net, x = r1_network("orthogonal"), r1_inputs()
    path = os.path.join(directory, "reanalyze.h5")
    nf.sample(net, x, n_networks, seed=2, store=path, save={8: 512}, overwrite=True)
    nf.reanalyze(path)  # warm the file cache and compile
    raw_bytes = n_networks * 512 * R1_INPUTS * 8
    seconds = min(time_call(lambda: nf.reanalyze(path)) for _ in range(3))
    return raw_bytes / seconds / 1e6


def size_ratios(n_networks, directory, batch_sizes=(7, 64, 1000, None)):
    """(compression, batch size, file MB, file size / payload) at R1, default raw save."""
    net, x = r1_network("gaussian"), r1_inputs()
    path = os.path.join(directory, "size.h5")
    rows = []
    for compression in ("lzf", "gzip"):
        for batch_size in batch_sizes:
            nf.sample(net, x, n_networks, seed=3, store=path, overwrite=True,
                      batch_size=batch_size, compression=compression)
            size = os.path.getsize(path)
            rows.append((compression, batch_size, size / 1e6,
                         size / nf.store.payload_bytes(path)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        print("| R1 config | in memory (s) | with store (s) | ratio | target |")
        print("|---|---|---|---|---|")
        for init in ("gaussian", "orthogonal"):
            mem, sto = store_overhead(init, args.networks, args.repeats, tmp)
            print(f"| relu {init}, {args.networks} networks | {mem:.2f} | {sto:.2f} | "
                  f"{sto / mem:.3f} | <= 1.15 |")
        rate = reanalyze_rate(args.networks // 2, tmp)
        print(f"\nreanalyze read rate (layer 8, all 512 neurons, float64, lzf): "
              f"{rate:,.0f} MB/s (target >= 200 MB/s)")
        print(f"\n| file size, R1 default save, {args.networks} networks | batch size | "
              "MB | file / payload | target |")
        print("|---|---|---|---|---|")
        for compression, batch_size, mb, ratio in size_ratios(args.networks, tmp):
            print(f"| {compression} | {batch_size or 'default'} | {mb:.2f} | {ratio:.3f} | "
                  "<= 1.3 |")


if __name__ == "__main__":
    main()
