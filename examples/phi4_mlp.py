"""λφ⁴ on the outputs of an MLP: the deformed ensemble against its infinite-width theory
(docs/fields.md#mlp-deformations).

At infinite width the output of a tanh MLP is a Gaussian process with the kernel K^(L)
(``theory.kernel_recursion``). Deforming the parameter density by
exp(-(λ/4!) ∫_box φ⁴) turns it into λφ⁴ theory with that (not translation invariant)
propagator: to first order the two-point function moves by the tadpole
-(1/2) ∫ K(x_a, y) K(y, y) K(y, x_b) dy and the connected four-point function is the
tree level -∫ Π_k K(x_k, y) dy (``theory.phi4_tadpole``, ``theory.phi4_tree_level``). At
width n the ensemble adds O(1/n): the table gives n (measured - theory) at two widths,
which stays put when the difference is a clean 1/n effect, and the figure draws the
first-order estimates against the theory lines.

Run:  python examples/phi4_mlp.py [OUTDIR] [N_NETWORKS]   (default: examples_out, 100000)
"""

import os
import sys

import numpy as np

import nnft_fast as nf
from nnft_fast import theory

WIDTHS = (32, 256)
DEPTH = 2  # hidden layers
BOX = (-1.0, 1.0)
COUPLING = 0.1
SEED = 5
POINTS = np.array([[-0.8], [-0.3], [0.2], [0.7]])
QUADRUPLE = (0, 0, 3, 3)


def network(width):
    return nf.Network((1,) + (width,) * DEPTH + (1,), "tanh", cw=1.5, cb=0.05)


def measure(width, n_networks):
    """First-order two-point and same-neuron connected four-point of the output, with
    the theory on the run's quadrature nodes."""
    net = network(width)
    ens = nf.sample(net, POINTS, n_networks, seed=SEED, deformation=nf.Phi4(COUPLING, BOX))
    nodes = ens.quadrature.nodes
    return {
        "width": width,
        "ens": ens,
        "two_point": ens.first_order.two_point(),
        "four_point": ens.first_order.four_point(neurons="same"),
        "tadpole": theory.phi4_tadpole(net, POINTS, BOX, nodes=nodes),
        "tree": theory.phi4_tree_level(net, POINTS, BOX, quadruples=[QUADRUPLE], nodes=nodes)[0],
    }


def table(results):
    """Markdown table of the measured first order against theory at each width."""
    lines = [
        "| n | entry | theory (n = ∞) | first order | pull | n (first order - theory) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        n = r["width"]
        entries = [
            (
                f"dK_{a}{b}/dλ",
                r["two_point"].value[a, b],
                r["two_point"].error[a, b],
                r["tadpole"][a, b],
            )
            for a, b in ((0, 0), (0, 3), (1, 2))
        ]
        est = r["four_point"]
        entries.append(("dG4c_0033/dλ", est.value[QUADRUPLE], est.error[QUADRUPLE], r["tree"]))
        for name, value, error, exact in entries:
            lines.append(
                f"| {n} | {name} | {exact:+.5f} | {value:+.5f} ± {error:.5f} | "
                f"{(value - exact) / error:+.2f} | {n * (value - exact):+.3f} ± {n * error:.3f} |"
            )
    return "\n".join(lines)


def main(outdir="examples_out", n_networks=100_000):
    os.makedirs(outdir, exist_ok=True)
    results = [measure(width, n_networks) for width in WIDTHS]
    rule = results[0]["ens"].quadrature
    print(
        f"λφ⁴ on the outputs of tanh MLPs of {DEPTH} hidden layers, λ = {COUPLING}, box "
        f"{BOX}, {n_networks} networks per width; empirical quadrature: {int(rule.nodes[0])} "
        f"nodes, estimated error {rule.error_bound:.1e}\n"
    )
    print(table(results))
    plot(results, outdir)


def plot(results, outdir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    x = POINTS[:, 0]
    for k, r in enumerate(results):
        shift = 0.015 * (k - 0.5)
        est = r["two_point"]
        axes[0].errorbar(
            x + shift,
            est.value[0],
            est.error[0],
            fmt="o",
            ms=4,
            label=f"first order, n = {r['width']}",
        )
    axes[0].plot(x, results[-1]["tadpole"][0], "k-", lw=1, label="tadpole (n = ∞)")
    axes[0].set(
        xlabel="x_b",
        ylabel=f"dK(x_0 = {x[0]:+.1f}, x_b)/dλ",
        title="first-order two-point function of the output",
    )
    widths = [r["width"] for r in results]
    values = [r["four_point"].value[QUADRUPLE] for r in results]
    errors = [r["four_point"].error[QUADRUPLE] for r in results]
    axes[1].errorbar(widths, values, errors, fmt="o", label="first order")
    axes[1].axhline(results[-1]["tree"], color="k", lw=1, label="tree level (n = ∞)")
    axes[1].set(
        xscale="log",
        xticks=widths,
        xticklabels=[str(w) for w in widths],
        xlabel="width n",
        ylabel="dG4c(x_0, x_0, x_3, x_3)/dλ",
        title="first-order connected four-point function",
    )
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(outdir, "phi4_mlp.png")
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


if __name__ == "__main__":
    main(*(sys.argv[1:2] or ["examples_out"]), *(int(a) for a in sys.argv[2:3]))
