"""NTK fluctuations against depth: Gaussian vs Haar-orthogonal ReLU networks at criticality
(C_W = 2, C_b = 0, lambda_b = 0, lambda_W = 1), one input, measured against the
leading-order 1/n predictions of ``nf.predict`` (``theory.ntk_fluctuation_recursion``).

    python examples/ntk_fluctuations.py [OUT_DIR] [N_NETWORKS]

Writes OUT_DIR/ntk_fluctuations.png (measured points with jackknife errors, predictions
dashed) and prints, per init and layer, Theta/(l lambda_W K/2) (1 in law for ReLU with
lambda_b = 0, at any width; K measured) and, for the normalised fluctuations A/Theta^2, B/Theta^2,
D/(Theta K), F/(Theta K) (Roberts-Yaida normalisation, 1/n_{l-1} taken out,
docs/conventions.md#ntk), the measured value, the prediction and
z = (measured - predicted) / error. Defaults: OUT_DIR ntk-report, N_NETWORKS 20000 (about
two minutes on 2 cores).

The predictions in closed form (one input, theory/ntk_fluctuations.py): Gaussian weights
    A/Theta^2 = (l-1)(7l-2)/(3l),  B/Theta^2 = (l-1)(2l-1)/(3l),
    D/(Theta K) = 3(l-1),           F/(Theta K) = l-1;
Haar-orthogonal weights: 5/4 -> 3/4 in A and D (the Haar vertex) and B, F halved (the
Weingarten terms):
    A/Theta^2 = (l-1)(5l-1)/(3l),  B/Theta^2 = (l-1)(2l-1)/(6l),
    D/(Theta K) = 2(l-1),           F/(Theta K) = (l-1)/2.
Layer 2 of Gaussian weights is exact at any width; deeper layers carry O(l/n) corrections,
which at width 64 and depth 8 are resolved.
"""

import os
import sys

import numpy as np

import nnft_fast as nf
from nnft_fast.report import (
    figure_labels,
    ntk_fluctuation_markdown,
    ntk_fluctuation_rows,
    plot_ntk_fluctuations,
)

WIDTH = 64
DEPTH = 8
INPUT_DIM = 16
INITS = ("gaussian", "orthogonal")


def main(out_dir="ntk-report", n_networks=20_000, seed=5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.ones((1, INPUT_DIM))
    widths = (INPUT_DIM,) + (WIDTH,) * DEPTH
    ensembles, tables = [], []
    for init in INITS:
        net = nf.Network(widths, "relu", init, cw=2.0, cb=0.0)
        ens = nf.sample(
            net, x, n_networks, seed, observables=("two_point", "ntk"), lambda_b=0.0, lambda_w=1.0
        )
        rows = ntk_fluctuation_rows(ens)  # nf.predict at the run's lambda_b, lambda_W
        ratio = []
        for layer in rows["layers"]:
            theta = ens.ntk(int(layer))
            scale = layer * ens.two_point(int(layer)).value[0, 0] / 2
            ratio.append(f"{theta.value[0, 0] / scale:.4f} ± {theta.error[0, 0] / scale:.4f}")
        print(f"\n## ReLU {init}, width {WIDTH}, {n_networks:,} networks ({ens.method})\n")
        print("\n".join(ntk_fluctuation_markdown(rows, ("Theta/(l K/2)", ratio))))
        ensembles.append(ens)
        tables.append(rows)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "ntk_fluctuations.png")
    # short legend entries (the weight law), the shared configuration in the title
    groups, series, config = figure_labels(ensembles)
    title = f"ReLU at criticality, λ_b = 0, λ_W = 1: {config}"
    plot_ntk_fluctuations(plt, list(zip(series, groups, tables)), path, title)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main(*(sys.argv[1:2]), *(int(a) for a in sys.argv[2:3]))
