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

Cos-net fields (``nf.CosNet`` stores) get their own plots, one series per ensemble:
  * propagator.png: the translation-averaged two-point function |G(r)| measured
    (``FieldEnsemble.two_point_by_separation``, jackknife errors; open markers where the
    measured G(r) < 0) against the exact ``theory.cosnet_propagator`` on a log scale, and
    below it the pulls (measured - exact) / error;
  * four_point.png (with four-point statistics: the full function for B <= 16 and/or
    sampled quadruples): the measured connected four-point function of one output
    against its exact finite-width value ``theory.cosnet_four_point`` (O(1/N)), with the
    identity line, and the histogram of the pulls against the standard normal density;
  * six_point.png (with sampled sextuples): the same for ``theory.cosnet_six_point``.
summary.md then has, per field ensemble, the G(r) table and the chi^2 of every set.
"""

import itertools

import os

import numpy as np

from .compare import predict
from .cosnet import CosNet
from .theory import ntk_recursion

TWO_POINT_PNG = "two_point.png"
VERTEX_PNG = "vertex.png"
NTK_PNG = "ntk.png"
NTK_FLUCTUATIONS_PNG = "ntk_fluctuations.png"
SUMMARY_MD = "summary.md"
PROPAGATOR_PNG = "propagator.png"
FOUR_POINT_PNG = "four_point.png"
SIX_POINT_PNG = "six_point.png"
PULL_RANGE = 5.0  # pull histograms span [-5, 5]
PULL_HISTOGRAM_MIN = 20  # fewer pulls are drawn as ticks


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


def is_field(ens):
    """Whether ``ens`` is a cos-net field ensemble (a ``FieldEnsemble``)."""
    return isinstance(ens.network, CosNet)


def field_label(ens):
    """One line naming a field ensemble: the cos-net's parameters and the ensemble size."""
    net = ens.network
    if net.momenta == "gaussian":
        law = f"Gaussian momenta, length={net.length:g}, variance={net.variance:g}"
    else:
        law = f"m={net.mass:g}, Λ={net.cutoff:g}, α={net.alpha:g}"
    return (
        f"cos-net d={net.dim}, N={net.width}, {law}, {net.amplitude} amplitudes "
        f"({ens.n_networks:,} networks, B={ens.points.shape[0]})"
    )


def _pulls(value, error, exact):
    """(value - exact) / error, NaN where the error is 0 or not finite."""
    value, error, exact = (np.asarray(a, np.float64).ravel() for a in (value, error, exact))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((error > 0) & np.isfinite(error), (value - exact) / error, np.nan)


def _compare_set(name, value, error, exact):
    """{'name', 'value', 'error', 'exact', 'pull'} flat arrays of one compared set."""
    value = np.asarray(value, np.float64).ravel()
    error = np.asarray(error, np.float64).ravel()
    exact = np.asarray(exact, np.float64).ravel()
    return {
        "name": name,
        "value": value,
        "error": error,
        "exact": exact,
        "pull": _pulls(value, error, exact),
    }


def field_rows(ens):
    """The measured and exact correlators of a field ensemble: {'G': set over the
    separations (with 'r'), 'G4c': [sets], 'G6c': [sets]}; a set as ``_compare_set``.
    The full four-point function (B <= 16) enters once per index multiset a <= b <= c <= d
    (it is symmetric)."""
    from .theory import cosnet_four_point, cosnet_propagator, cosnet_six_point

    net, X = ens.network, ens.points
    r, g = ens.two_point_by_separation()
    rows = {
        "G": _compare_set("G(r)", g.value, g.error, cosnet_propagator(net, r)),
        "G4c": [],
        "G6c": [],
    }
    rows["G"]["r"] = np.asarray(r, np.float64)
    if ens.has_four_point:
        quads = np.array(list(itertools.combinations_with_replacement(range(len(X)), 4)))
        index = tuple(quads.T)
        full = ens.four_point(connected=True, neurons="same")
        exact = cosnet_four_point(net, X, neurons="same")
        rows["G4c"].append(
            _compare_set(
                "all index quadruples",
                full.value[index],
                full.error[index],
                exact[index],
            )
        )
    if ens.has_tuples and len(ens.quadruples):
        g4 = ens.connected_four_point()
        exact = cosnet_four_point(net, X, ens.quadruples)
        rows["G4c"].append(_compare_set("sampled quadruples", g4.value, g4.error, exact))
    if ens.has_tuples and len(ens.sextuples):
        g6 = ens.connected_six_point()
        exact = cosnet_six_point(net, X, ens.sextuples)
        rows["G6c"].append(_compare_set("sampled sextuples", g6.value, g6.error, exact))
    return rows


def _chi2(pull):
    """(chi^2, number of finite pulls, max |pull|) of a set of pulls."""
    finite = pull[np.isfinite(pull)]
    if not finite.size:
        return float("nan"), 0, float("nan")
    return float(np.sum(finite**2)), int(finite.size), float(np.max(np.abs(finite)))


def field_markdown(ensembles, tables):
    """Markdown: per field ensemble the G(r) table and the chi^2 of every compared set."""
    lines = []
    for ens, rows in zip(ensembles, tables):
        lines.append(f"### {field_label(ens)}\n")
        lines.append("| r | G(r) measured | G(r) exact | pull |")
        lines.append("|---|---|---|---|")
        g = rows["G"]
        for i, r in enumerate(g["r"]):
            lines.append(
                f"| {r:.6g} | {g['value'][i]:.6g} ± {g['error'][i]:.2g} | "
                f"{g['exact'][i]:.6g} | {g['pull'][i]:+.2f} |"
            )
        lines.append("")
        # The entries of a set are correlated: chi^2 / entries has mean 1, not chi^2's law.
        lines.append("| correlator | set | entries | mean pull^2 | max abs pull |")
        lines.append("|---|---|---|---|---|")
        for key, sets in (("G(r)", [g]), ("G4c", rows["G4c"]), ("G6c", rows["G6c"])):
            for one in sets:
                chi2, n, worst = _chi2(one["pull"])
                lines.append(
                    f"| {key} | {one['name']} | {n} | {chi2 / max(n, 1):.3g} | {worst:.3g} |"
                )
        lines.append("")
    return "\n".join(lines)


def _plot_propagator(plt, data, path):
    """|G(r)| measured and exact on a log scale, pulls below (module docstring)."""
    from .theory import cosnet_propagator

    fig, (ax, axp) = plt.subplots(
        2, 1, figsize=(6.4, 5.6), sharex=True, gridspec_kw={"height_ratios": (3, 1)}
    )
    positive = []
    for name, ens, rows in data:
        g = rows["G"]
        r, value, error = g["r"], g["value"], g["error"]
        fine = np.linspace(0.0, float(r.max()), 200)
        exact_fine = np.abs(cosnet_propagator(ens.network, fine))
        line = ax.plot(fine, exact_fine, ls="--", label=f"{name}: exact G(r)")[0]
        color = line.get_color()
        negative = value < 0
        for mask, face in ((~negative, color), (negative, "none")):
            if mask.any():
                ax.errorbar(
                    r[mask],
                    np.abs(value[mask]),
                    yerr=error[mask],
                    marker="o",
                    ls="none",
                    capsize=3,
                    color=color,
                    markerfacecolor=face,
                    label=f"{name}: measured" + (" (G < 0)" if face == "none" else ""),
                )
        axp.errorbar(r, g["pull"], yerr=np.ones_like(r), marker="o", ls="none", color=color)
        positive += [np.abs(value[value != 0]), exact_fine[exact_fine > 0]]
    ax.set_yscale("log")
    values = np.concatenate(positive)
    if values.size:
        ax.set_ylim(0.3 * values.min(), 3.0 * values.max())
    ax.set_ylabel(r"$|G(r)|$")
    ax.set_title("Two-point function G(r) of the cos-net field: measured vs exact")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    axp.axhline(0.0, color="k", lw=0.8)
    axp.axhspan(-2.0, 2.0, color="0.9", zorder=0)
    axp.set_xlabel(r"separation $r = |x_a - x_b|$")
    axp.set_ylabel("(measured − exact)\n/ error", fontsize=8)
    axp.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_correlator(plt, data, key, title, quantity, path):
    """Measured against exact with error bars and the identity line, and the pulls'
    histogram against N(0, 1); returns whether anything was plotted."""
    series = [(name, one) for name, _, rows in data for one in rows[key]]
    if not series:
        return False
    fig, (ax, axh) = plt.subplots(1, 2, figsize=(10.4, 4.6), gridspec_kw={"width_ratios": (3, 2)})
    lo, hi = np.inf, -np.inf
    for name, one in series:
        bars = ax.errorbar(
            one["exact"],
            one["value"],
            yerr=one["error"],
            marker="o",
            ms=3,
            ls="none",
            capsize=2,
            alpha=0.7,
            label=f"{name}: {one['name']} ({one['value'].size})",
        )
        lo = min(lo, one["exact"].min(), (one["value"] - one["error"]).min())
        hi = max(hi, one["exact"].max(), (one["value"] + one["error"]).max())
        finite = one["pull"][np.isfinite(one["pull"])]
        color = bars[0].get_color()
        if finite.size >= PULL_HISTOGRAM_MIN:
            axh.hist(
                np.clip(finite, -PULL_RANGE, PULL_RANGE),
                bins=np.linspace(-PULL_RANGE, PULL_RANGE, 41),
                density=True,
                histtype="step",
                color=color,
                label=f"{name}: {one['name']}",
            )
        elif finite.size:  # too few for a histogram: one tick per pull
            axh.plot(
                np.clip(finite, -PULL_RANGE, PULL_RANGE),
                np.zeros(finite.size),
                "|",
                ms=14,
                mew=2,
                color=color,
                label=f"{name}: {one['name']}",
            )
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8, label="measured = exact")
    ax.set_xlabel(f"exact {quantity}")
    ax.set_ylabel(f"measured {quantity}")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    z = np.linspace(-PULL_RANGE, PULL_RANGE, 200)
    axh.plot(z, np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi), "k--", label="N(0, 1)")
    axh.set_xlabel(f"pull (measured − exact) / error (clipped to ±{PULL_RANGE:g})")
    axh.set_ylabel("density")
    axh.set_title("pulls", fontsize=10)
    axh.grid(alpha=0.3)
    axh.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_field_report(plt, ensembles, out_dir):
    """The field plots (module docstring) of ``ensembles`` into ``out_dir``: (paths by
    key 'G', 'G4c', 'G6c', Markdown text)."""
    tables = [field_rows(e) for e in ensembles]
    data = [
        (f"N={e.network.width}, {e.n_networks:,} networks", e, rows)
        for e, rows in zip(ensembles, tables)
    ]
    paths = {"G": os.path.join(out_dir, PROPAGATOR_PNG)}
    _plot_propagator(plt, data, paths["G"])
    for key, fname, title, quantity in (
        (
            "G4c",
            FOUR_POINT_PNG,
            "Connected four-point function of the cos-net field: measured vs exact (1/N)",
            r"$G_4^{c}$",
        ),
        (
            "G6c",
            SIX_POINT_PNG,
            "Connected six-point function of the cos-net field: measured vs exact (1/N²)",
            r"$G_6^{c}$",
        ),
    ):
        path = os.path.join(out_dir, fname)
        if _plot_correlator(plt, data, key, title, quantity, path):
            paths[key] = path
    return paths, field_markdown(ensembles, tables)


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
    ntk_fluctuations.png (with NTK data) and summary.md into ``out_dir``; returns paths.
    Cos-net field ensembles get propagator.png, four_point.png and six_point.png instead
    (where they hold those statistics; module docstring)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("reports need matplotlib: pip install 'nnft_fast[plot]'") from None
    os.makedirs(out_dir, exist_ok=True)
    fields = [e for e in ensembles if is_field(e)]
    ensembles = [e for e in ensembles if not is_field(e)]
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
    text = markdown_table(ensembles, tables)
    if fields:
        field_paths, field_text = write_field_report(plt, fields, out_dir)
        paths.update(field_paths)
        text += ("\n" if text else "") + field_text
    summary = os.path.join(out_dir, SUMMARY_MD)
    with open(summary, "w") as fh:
        fh.write(f"# {title}\n\n" + text)
    paths["summary"] = summary
    return paths
