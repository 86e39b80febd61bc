"""NTK fluctuations against depth: Gaussian vs Haar-orthogonal ReLU networks at criticality
(C_W = 2, C_b = 0, lambda_b = 0, lambda_W = 1), one input.

    python examples/ntk_fluctuations.py [OUT_DIR] [N_NETWORKS]

Writes OUT_DIR/ntk_fluctuations.png and prints, per layer, Theta/(l lambda_W K/2) (exactly
1 for Gaussian ReLU with lambda_b = 0) and the normalised fluctuations A/Theta^2,
B/Theta^2, D/(Theta K), F/(Theta K) (Roberts-Yaida normalisation, 1/n_{l-1} taken out).
Defaults: OUT_DIR ntk-report, N_NETWORKS 20000 (about two minutes on 2 cores; the
orthogonal ensemble uses the dense method). Expected picture: for Gaussian weights the
normalised fluctuations grow roughly linearly with depth (the NTK "will not give the same
result every time" once depth/width is not small); Haar-orthogonal weights are compared
on the same axes.
"""

import os
import sys

import numpy as np

import nnft_fast as nf

WIDTH = 64
DEPTH = 8
INPUT_DIM = 16
FIELDS = ("A", "B", "D", "F")


def normalised(ens, layer):
    """Estimates of A/Theta^2, B/Theta^2, D/(Theta K), F/(Theta K) for input 0."""
    k = ens.two_point(layer).value[0, 0]
    out = {}
    for field in FIELDS:
        scale = (
            (lambda m: m.theta[..., 0, 0] ** 2)
            if field in "AB"
            else (lambda m: m.theta[..., 0, 0] * k)
        )
        out[field] = ens.estimate_ntk(
            layer, lambda m, f=field, s=scale: getattr(m, f)[..., 0, 0, 0, 0] / s(m)
        )
    return out


def main(out_dir="ntk-report", n_networks=20_000, seed=5):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.ones((1, INPUT_DIM))
    widths = (INPUT_DIM,) + (WIDTH,) * DEPTH
    layers = np.arange(1, DEPTH + 1)
    fig, axes = plt.subplots(1, len(FIELDS), figsize=(4 * len(FIELDS), 3.6))
    for init in ("gaussian", "orthogonal"):
        net = nf.Network(widths, "relu", init, cw=2.0, cb=0.0)
        ens = nf.sample(
            net, x, n_networks, seed, observables=("two_point", "ntk"), lambda_b=0.0, lambda_w=1.0
        )
        print(f"\n## ReLU {init}, width {WIDTH}, {n_networks:,} networks ({ens.method})\n")
        print(
            "| layer | Theta/(l K/2) | "
            + " | ".join(f"{f}/{'Theta^2' if f in 'AB' else 'Theta K'}" for f in FIELDS)
            + " |"
        )
        print("|---:|---:|" + "---:|" * len(FIELDS))
        rows = {f: [] for f in FIELDS}
        for layer in layers:
            theta = ens.ntk(layer)
            k = ens.two_point(layer).value[0, 0]
            ratio = theta.value[0, 0] / (layer * k / 2)
            est = normalised(ens, int(layer))
            for f in FIELDS:
                rows[f].append(est[f])
            print(
                f"| {layer} | {ratio:.4f} ± {theta.error[0, 0] / (layer * k / 2):.4f} | "
                + " | ".join(f"{est[f].value:.3f} ± {est[f].error:.3f}" for f in FIELDS)
                + " |"
            )
        for ax, f in zip(axes, FIELDS):
            ax.errorbar(
                layers,
                [e.value for e in rows[f]],
                [e.error for e in rows[f]],
                marker="o",
                capsize=2,
                label=init,
            )
    for ax, f in zip(axes, FIELDS):
        ax.set_xlabel("layer")
        ax.set_title(f"{f}/{'Θ²' if f in 'AB' else 'ΘK'} (input 0)")
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.legend()
    fig.suptitle(f"NTK fluctuations, ReLU at criticality, width {WIDTH}")
    fig.tight_layout()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "ntk_fluctuations.png")
    fig.savefig(path, dpi=120)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main(*(sys.argv[1:2]), *(int(a) for a in sys.argv[2:3]))
