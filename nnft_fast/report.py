"""Reports: PNG plots (matplotlib) and a Markdown table, per layer, for one or more runs.

Plotted per layer with error bars, one curve per ensemble:
  * the diagonal two-point function K_aa (input 0), with the infinite-width prediction
    (``theory.kernel_recursion``) as a dashed line;
  * the normalised vertex V/K^2 = n_{l-1} (E[z_i^2 z_j^2] - K^2) / K^2 (input 0), with
    the leading-order 1/n prediction (``theory.vertex_recursion``, Gaussian or Haar
    weights) as a dashed line;
  * for runs with the NTK: the mean NTK Theta_00 with the infinite-width recursion
    (``theory.ntk_recursion``) dashed, and the normalised NTK fluctuation A/Theta^2
    (input 0, Roberts-Yaida normalisation).
"""

import os

import numpy as np

from .compare import predict
from .theory import ntk_recursion

TWO_POINT_PNG = "two_point.png"
VERTEX_PNG = "vertex.png"
NTK_PNG = "ntk.png"
NTK_FLUCTUATIONS_PNG = "ntk_fluctuations.png"
SUMMARY_MD = "summary.md"


def normalised_vertex(ens, layer, alpha=0):
    """V/K^2 for input ``alpha``, jackknife Estimate."""
    a = alpha
    return ens.estimate(layer, lambda m: m.vertex[..., a, a, a, a] / m.two_point[..., a, a] ** 2)


def normalised_ntk_fluctuation(ens, layer, alpha=0):
    """A/Theta^2 for input ``alpha``, jackknife Estimate."""
    a = alpha
    return ens.estimate_ntk(layer, lambda m: m.A[..., a, a, a, a] / m.theta[..., a, a] ** 2)


def label(ens):
    net = ens.network
    return f"{net.activation.name} {net.init} (n={max(net.widths[1:])}, N={ens.n_networks:,})"


def per_layer(ens):
    """{'layers', 'K', 'K_err', 'VK2', 'VK2_err'} arrays over the ensemble's layers."""
    layers = list(ens.accumulator.layers)
    k = [ens.two_point(l) for l in layers]
    rows = {
        "layers": np.array(layers),
        "K": np.array([float(e.value[0, 0]) for e in k]),
        "K_err": np.array([float(e.error[0, 0]) for e in k]),
    }
    theory = predict(ens.network, ens.inputs[:1])  # input 0 only
    rows["K_theory"] = np.array([float(theory.kernels[l - 1][0, 0]) for l in layers])
    if ens.has_four_point:
        v = [normalised_vertex(ens, l) for l in layers]
        rows["VK2"] = np.array([float(e.value) for e in v])
        rows["VK2_err"] = np.array([float(e.error) for e in v])
        if theory.vertices is not None:
            rows["VK2_theory"] = np.array(
                [
                    float(theory.vertices[l - 1].ravel()[0] / theory.kernels[l - 1][0, 0] ** 2)
                    for l in layers
                ]
            )
    if ens.has_ntk:
        theta = [ens.ntk(l) for l in layers]
        rows["Theta"] = np.array([float(e.value[0, 0]) for e in theta])
        rows["Theta_err"] = np.array([float(e.error[0, 0]) for e in theta])
        acc = ens.ntk_accumulator
        thetas = ntk_recursion(ens.network, ens.inputs[:1], acc.lambda_b, acc.lambda_w)
        rows["Theta_theory"] = np.array([float(thetas[l - 1][0, 0]) for l in layers])
        fluct = [normalised_ntk_fluctuation(ens, l) for l in layers]
        rows["AT2"] = np.array([float(e.value) for e in fluct])
        rows["AT2_err"] = np.array([float(e.error) for e in fluct])
    return rows


def markdown_table(ensembles, tables=None):
    """One Markdown table: layer x ensemble, K and V/K^2 with errors; ``tables``: the
    ensembles' ``per_layer`` results when already computed."""
    lines = []
    tables = tables or [per_layer(ens) for ens in ensembles]
    for ens, rows in zip(ensembles, tables):
        lines.append(f"### {label(ens)}\n")
        ntk = "Theta" in rows
        lines.append(
            "| layer | K_00 | K_00 infinite width | V/K^2 | V/K^2 leading 1/n |"
            + (" Theta_00 | Theta_00 infinite width | A/Theta^2 |" if ntk else "")
        )
        lines.append("|---|---|---|---|---|" + ("---|---|---|" if ntk else ""))
        for i, layer in enumerate(rows["layers"]):
            vk = f"{rows['VK2'][i]:.4g} ± {rows['VK2_err'][i]:.2g}" if "VK2" in rows else "—"
            vk_theory = f"{rows['VK2_theory'][i]:.4g}" if "VK2_theory" in rows else "—"
            line = (
                f"| {layer} | {rows['K'][i]:.6g} ± {rows['K_err'][i]:.2g} | "
                f"{rows['K_theory'][i]:.6g} | {vk} | {vk_theory} |"
            )
            if ntk:
                line += (
                    f" {rows['Theta'][i]:.6g} ± {rows['Theta_err'][i]:.2g} |"
                    f" {rows['Theta_theory'][i]:.6g} |"
                    f" {rows['AT2'][i]:.4g} ± {rows['AT2_err'][i]:.2g} |"
                )
            lines.append(line)
        lines.append("")
    return "\n".join(lines)


def write_report(ensembles, out_dir, title="nnft_fast report"):
    """Write two_point.png, vertex.png (with four-point data), ntk.png and
    ntk_fluctuations.png (with NTK data) and summary.md into ``out_dir``; returns paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("reports need matplotlib: pip install 'nnft_fast[plot]'") from None
    os.makedirs(out_dir, exist_ok=True)
    tables = [per_layer(e) for e in ensembles]
    data = [(label(e), rows) for e, rows in zip(ensembles, tables)]
    paths = {}
    theory_names = {"K": "infinite width", "VK2": "leading 1/n", "Theta": "infinite width"}
    for key, fname, ylabel in (
        ("K", TWO_POINT_PNG, r"two-point $K_{00}^{(\ell)}$"),
        ("VK2", VERTEX_PNG, r"normalised vertex $V^{(\ell)}/K^2$"),
        ("Theta", NTK_PNG, r"mean NTK $\Theta_{00}^{(\ell)}$"),
        ("AT2", NTK_FLUCTUATIONS_PNG, r"NTK fluctuation $A^{(\ell)}/\Theta^2$"),
    ):
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        plotted = False
        for name, rows in data:
            if key in rows:
                bars = ax.errorbar(
                    rows["layers"],
                    rows[key],
                    yerr=rows[key + "_err"],
                    marker="o",
                    capsize=3,
                    label=name,
                )
                if key + "_theory" in rows:
                    ax.plot(
                        rows["layers"],
                        rows[key + "_theory"],
                        ls="--",
                        color=bars[0].get_color(),
                        label=f"{name}: {theory_names[key]}",
                    )
                plotted = True
        if plotted:
            ax.set_xlabel(r"layer $\ell$")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
            path = os.path.join(out_dir, fname)
            fig.tight_layout()
            fig.savefig(path, dpi=120)
            paths[key] = path
        plt.close(fig)
    summary = os.path.join(out_dir, SUMMARY_MD)
    with open(summary, "w") as fh:
        fh.write(f"# {title}\n\n" + markdown_table(ensembles, tables))
    paths["summary"] = summary
    return paths
