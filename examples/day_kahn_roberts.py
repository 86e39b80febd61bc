"""Day-Kahn-Roberts comparison: Gaussian vs Haar-orthogonal weights, tanh (C_W = 1) and ReLU
(C_W = 2) at criticality, width 512, depth 8, one input, against the leading-order 1/n
predictions of ``nf.predict``: the vertex V/K^2 (``theory.vertex_recursion``) and the NTK
fluctuations A/Theta^2, B/Theta^2, D/(Theta K), F/(Theta K) at lambda_b = 0, lambda_W = 1
(``theory.ntk_fluctuation_recursion``).

    python examples/day_kahn_roberts.py [OUT_DIR] [N_NETWORKS] [N_NTK_NETWORKS]

Writes OUT_DIR/vertex.png, two_point.png and summary.md (N_NETWORKS per ensemble, default
200000) and OUT_DIR/ntk/ntk_fluctuations.png, ntk.png, two_point.png and summary.md (the
NTK ensembles, N_NTK_NETWORKS each, default 20000: at this width an NTK network costs 4-8
times a forward-only one) and prints the z-score table of every vertex ensemble, the NTK
fluctuation tables (measured, leading order 1/n, z) and the orthogonal-against-Gaussian
answer at the last layer. Defaults: OUT_DIR dkr-report; about four minutes on 2 cores.

Expected picture. Vertex: ReLU grows like 5(l-1) (Gaussian) and 3(l-1) - 2 (orthogonal);
tanh grows like ~(2/3) l (Gaussian) and stays near -2 (orthogonal). NTK ("do orthogonal
weights tame the NTK fluctuations?"): for ReLU orthogonal weights halve B and F (the
Weingarten terms) and take 5/4 -> 3/4 in A and D, but every fluctuation still grows with
depth; for tanh the Gaussian B/Theta^2 and F/(Theta K) grow about linearly with depth while
the orthogonal ones stay bounded, like the vertex (predicted at layers 3-8: B/Theta^2
0.15-0.20, F/(Theta K) -0.41 to -0.55). Measured points lie on the lines up to O(1/n)
corrections (docs/gallery.md#day-kahn-roberts has the numbers).
"""

import os
import sys

import numpy as np

import nnft_fast as nf
from nnft_fast.report import (
    NTK_FLUCTUATION_NAMES,
    NTK_FLUCTUATIONS,
    ntk_fluctuation_markdown,
    ntk_fluctuation_rows,
    write_report,
)

WIDTH = 512
DEPTH = 8
INPUT_DIM = 16
CONFIGS = (("relu", 2.0), ("tanh", 1.0))
INITS = ("gaussian", "orthogonal")
LAMBDA_B, LAMBDA_W = 0.0, 1.0


def answer_table(results):
    """Markdown: per activation and fluctuation, Gaussian and orthogonal at the last layer,
    measured ± error, the leading order 1/n and z; ``results``: {(activation, init): rows}."""
    lines = [
        f"| layer {DEPTH} | Gaussian measured | leading 1/n | z | orthogonal measured | "
        "leading 1/n | z |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for activation, _ in CONFIGS:
        for name in NTK_FLUCTUATIONS:
            key = f"ntk_{name}"
            cells = []
            for init in INITS:
                rows = results[activation, init]
                cells += [
                    f"{rows[key][-1]:.4g} ± {rows[key + '_err'][-1]:.2g}",
                    f"{rows[key + '_theory'][-1]:.4g}",
                    f"{rows[key + '_z'][-1]:+.2f}",
                ]
            name = NTK_FLUCTUATION_NAMES[name][0]
            lines.append(f"| {activation} {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(out_dir="dkr-report", n_networks=200_000, ntk_networks=20_000, seed=2022):
    x = np.ones((1, INPUT_DIM))
    widths = (INPUT_DIM,) + (WIDTH,) * DEPTH
    ensembles, ntk_ensembles, results = [], [], {}
    for activation, cw in CONFIGS:
        for init in INITS:
            net = nf.Network(widths, activation, init, cw=cw, cb=0.0)
            ens = nf.sample(net, x, n_networks, seed)
            ensembles.append(ens)
            print(f"\n## {activation} {init} (C_W = {cw}), {n_networks:,} networks\n")
            print(nf.compare(ens).table())
    for activation, cw in CONFIGS:
        for init in INITS:
            net = nf.Network(widths, activation, init, cw=cw, cb=0.0)
            ens = nf.sample(
                net,
                x,
                ntk_networks,
                seed,
                observables=("two_point", "ntk"),
                lambda_b=LAMBDA_B,
                lambda_w=LAMBDA_W,
            )
            ntk_ensembles.append(ens)
            rows = results[activation, init] = ntk_fluctuation_rows(ens)
            print(f"\n## NTK fluctuations: {activation} {init}, {ntk_networks:,} networks\n")
            print("\n".join(ntk_fluctuation_markdown(rows)))
    print("\n## Do orthogonal weights tame the NTK fluctuations?\n")
    print(answer_table(results))
    # each figure's first title line names what it plots; write_report adds the shared
    # configuration (width, depth, networks) to these
    paths = write_report(ensembles, out_dir, title="Day-Kahn-Roberts at criticality")
    paths.update(
        {
            f"ntk_{key}": path
            for key, path in write_report(
                ntk_ensembles,
                os.path.join(out_dir, "ntk"),
                title=f"Day-Kahn-Roberts at criticality, λ_b = {LAMBDA_B:g}, λ_W = {LAMBDA_W:g}",
            ).items()
        }
    )
    print("\n".join(f"wrote {p}" for p in paths.values()))


if __name__ == "__main__":
    main(*(sys.argv[1:2]), *(int(a) for a in sys.argv[2:4]))
