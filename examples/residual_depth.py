"""Residual connections against depth: V/K^2 of critical ReLU networks, plain and residual,
Gaussian and Haar-orthogonal weights, with the leading-order 1/n theory.

A residual layer is z^(l) = xi z^(l-1) + gamma (b + W relu(z^(l-1))) (docs/conventions.md
#residual). It is critical (chi_par = chi_perp = 1, ``theory.find_critical``) at
C_b = 0, C_W = 2 (1 - xi^2) / gamma^2; so is the plain network (xi = 0, C_W = 2), and the
kernel then stays put with depth in both. The normalised vertex V/K^2 grows with depth in
all of them, by 5 per layer without the residual connection. With it, the growth depends
on xi alone (gamma^2 C_W = 2 (1 - xi^2) at criticality): it starts lower, since the new
part of each layer carries only 1 - xi^2 of the kernel, but it keeps rising with depth, as
each neuron carries its own earlier fluctuations along; at xi^2 = 0.5 it ends up above 5 per
layer (5.3 at layer 12), and only a strong residual connection (xi^2 = 0.9: 0.4 rising to
0.8 per layer) keeps the network close to Gaussian. The kernel of the plain ReLU network
is exact at any width; that of a residual one drifts at order 1/n (a residual ReLU neuron
has E[z^3] of order 1/n, so E[relu(z)^2] is no longer exactly K/2). The lines are
``theory.vertex_recursion``: for residual networks its functional form, which follows the
covariance of arbitrary functions of two neurons (a residual ReLU layer carries
three-point cross cumulants at order 1/n, which a recursion of V alone would miss).

    python examples/residual_depth.py [OUT_DIR] [N_NETWORKS]

Writes OUT_DIR/residual_depth.png (default OUT_DIR: residual-depth, N_NETWORKS: 50000;
under a minute on 2 cores) and prints the table of measured V/K^2 against theory, with
n (measured - theory), the next order in 1/n (it grows with depth like that of the
plain network).
"""

import math
import os
import sys

import numpy as np

import nnft_fast as nf
from nnft_fast import theory

WIDTH = 128
DEPTH = 10
INPUT_DIM = 4
XI2 = (0.0, 0.5, 0.9)  # xi^2: the part of each layer's kernel the residual term carries
INITS = ("gaussian", "orthogonal")
SEED = 17


def networks(width=WIDTH, depth=DEPTH):
    """{(kind, init): critical ReLU network} for the plain and the residual kind."""
    widths = (INPUT_DIM,) + (width,) * depth
    out = {}
    for xi2 in XI2:
        kind = f"residual, xi^2 = {xi2}" if xi2 else "plain"
        xi = math.sqrt(xi2)
        point = theory.find_critical("relu", xi=xi)
        for init in INITS:
            out[kind, init] = nf.Network(
                widths, "relu", init, cw=[2.0] + [point.cw] * (depth - 1), cb=point.cb, xi=xi
            )
    return out


def normalised_vertex(ens, layer):
    """V/K^2 of the one input, jackknife Estimate."""
    return ens.estimate(layer, lambda m: m.vertex[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2)


def measure(net, n_networks, x):
    """Measured V/K^2 and K per layer, with the theory."""
    ens = nf.sample(net, x, n_networks, SEED)
    kernels, vertices = theory.vertex_recursion(net, x)
    layers = range(1, net.n_layers + 1)
    return {
        "vk2": [normalised_vertex(ens, l) for l in layers],
        "k": [ens.two_point(l) for l in layers],
        "vk2_theory": [v[0, 0, 0, 0] / k[0, 0] ** 2 for k, v in zip(kernels, vertices)],
        "k_theory": [k[0, 0] for k in kernels],
    }


def table(results, width):
    lines = [
        "| network | weights | layer | V/K^2 measured | theory | pull | n (measured - theory) |",
        "|---|---|---|---|---|---|---|",
    ]
    for (kind, init), r in results.items():
        for layer, (est, th) in enumerate(zip(r["vk2"], r["vk2_theory"]), start=1):
            if layer == 1:
                continue  # 0 (Gaussian) or the Haar frame's exact value (to O(1/n) in theory)
            value, error = float(est.value), float(est.error)
            lines.append(
                f"| {kind} | {init} | {layer} | {value:+.3f} ± {error:.3f} | {th:+.3f} | "
                f"{(value - th) / error:+.2f} | {width * (value - th):+.1f} ± {width * error:.1f} |"
            )
    return "\n".join(lines)


def plot(results, path, width=WIDTH):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {}
    for (kind, init), r in results.items():
        layers = np.arange(1, len(r["vk2"]) + 1)
        style = "-" if init == "gaussian" else "--"
        marker = "o" if init == "gaussian" else "s"
        label = f"{kind}, {init}"
        color = colors.setdefault(kind, f"C{len(colors)}")
        for ax, key in ((axes[0], "vk2"), (axes[1], "k")):
            values = [np.ravel(e.value)[0] for e in r[key]]
            errors = [np.ravel(e.error)[0] for e in r[key]]
            ax.errorbar(layers, values, errors, fmt=marker, ms=4, color=color, label=label)
            ax.plot(layers, r[key + "_theory"], style, color=color, lw=1)
    axes[0].set(
        xlabel="layer l",
        ylabel=r"$V^{(\ell)}/(K^{(\ell)})^2$",
        title=r"normalised vertex $V^{(\ell)}/(K^{(\ell)})^2$, input 0, "
        f"critical ReLU, width {width}",
    )
    axes[1].set(
        xlabel="layer l",
        ylabel=r"$K^{(\ell)}$",
        title=r"$K^{(\ell)} = E[z_i z_i]$, input 0 (constant at criticality)",
    )
    axes[0].legend(fontsize=8)
    fig.text(
        0.5,
        0.005,
        "residual: γ = 1, C_W = 2(1 - ξ²); lines: theory.vertex_recursion "
        "(solid Gaussian, dashed orthogonal)",
        ha="center",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=120)


def main(out_dir="residual-depth", n_networks=50_000, width=WIDTH, depth=DEPTH):
    os.makedirs(out_dir, exist_ok=True)
    x = np.ones((1, INPUT_DIM))
    results = {key: measure(net, n_networks, x) for key, net in networks(width, depth).items()}
    print(
        f"V/K^2 of critical ReLU networks, width {width}, {n_networks:,} networks each; "
        "residual: gamma = 1, C_W = 2 (1 - xi^2)\n"
    )
    print(table(results, width))
    path = os.path.join(out_dir, "residual_depth.png")
    plot(results, path, width)
    print(f"\nfigure: {path}")
    return results


if __name__ == "__main__":
    main(*(sys.argv[1:2]), *(int(a) for a in sys.argv[2:3]))
