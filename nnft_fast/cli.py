"""Command line ``nnft``.

``nnft demo``: the built-in default job — Gaussian against Haar-orthogonal weights at
criticality for ReLU (C_W = 2) and tanh (C_W = 1), narrow and deep, printing the
normalised four-point vertex V/K^2 (single input) per layer with error bars.
"""
import argparse
import sys
import time

import numpy as np

from .network import Network
from .sampling import sample

DEMO_WIDTH = 32
DEMO_DEPTH = 12
DEMO_INPUT_DIM = 16
DEMO_CONFIGS = (("relu", 2.0), ("tanh", 1.0))
DEMO_INITS = ("gaussian", "orthogonal")


def normalised_vertex(ens, layer):
    """V/K^2 for the single input: n_{l-1} (E[z_i^2 z_j^2] - K^2) / K^2."""
    return ens.estimate(layer, lambda m: m.vertex[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2)


def run_demo(n_networks, seed, threads, out=sys.stdout):
    """Sample the four demo ensembles and print a per-layer table of V/K^2."""
    x = np.ones((1, DEMO_INPUT_DIM))
    widths = (DEMO_INPUT_DIM,) + (DEMO_WIDTH,) * DEMO_DEPTH
    results = {}
    for activation, cw in DEMO_CONFIGS:
        for init in DEMO_INITS:
            net = Network(widths, activation, init, cw=cw, cb=0.0)
            start = time.perf_counter()
            ens = sample(net, x, n_networks, seed=seed, threads=threads)
            elapsed = time.perf_counter() - start
            results[(activation, init)] = ens
            print(f"{activation:>5} {init:>10}: {n_networks} networks in {elapsed:.1f} s "
                  f"({n_networks / elapsed:,.0f}/s, method={ens.method})", file=out)
    print(f"\nNormalised vertex V/K^2 per layer (width {DEMO_WIDTH}, single input; "
          "leading-order Gaussian theory: 2(l-1) linear, 5(l-1) ReLU):\n", file=out)
    header = "| layer | " + " | ".join(f"{a} {i}" for a, _ in DEMO_CONFIGS for i in DEMO_INITS)
    print(header + " |", file=out)
    print("|---" * (1 + len(results)) + "|", file=out)
    for layer in range(1, DEMO_DEPTH + 1):
        cells = []
        for key in results:
            est = normalised_vertex(results[key], layer)
            cells.append(f"{float(est.value):7.3f} ± {float(est.error):.3f}")
        print(f"| {layer:5d} | " + " | ".join(cells) + " |", file=out)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="nnft", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="Gaussian vs orthogonal weights at criticality")
    demo.add_argument("--networks", type=int, default=400_000,
                      help="networks per ensemble (default 400000)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        run_demo(args.networks, args.seed, args.threads)
    except (ValueError, TypeError) as exc:
        parser.exit(2, f"nnft: error: {exc}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
