"""Reports: PNG plots (matplotlib) and a Markdown table, per layer, for one or more runs.

Plotted per layer with error bars (``plot_per_layer``), one panel per activation (their
scales differ), in it one colour per ensemble, named in the legend by its weight law
("Gaussian", "orthogonal") and what else tells it from the panel's others; what all the
ensembles share goes into the title under the line naming the quantity
(``figure_labels``):
  * two_point.png: the diagonal two-point function K^(l) = E[z_i z_i] (input 0), with the
    infinite-width prediction (``theory.kernel_recursion``) dashed and, where it is
    known, the exact finite-width value solid (the same numbers: for one input of a
    linear or ReLU network K is the infinite-width one at any width);
  * vertex.png: the normalised vertex V/K^2 = n_{l-1} (E[z_i^2 z_j^2] - K^2) / K^2
    (input 0), with the leading-order 1/n prediction (``theory.vertex_recursion``,
    Gaussian or Haar weights) dashed and the exact finite-width curve
    (``theory.exact_network_moments``: Gaussian weights, linear or (leaky) ReLU, no
    residual connections; docs/exact-results.md#deep-relu) solid;
  * for runs with the NTK: the mean NTK Theta_00 with the infinite-width recursion
    (``theory.ntk_recursion``) dashed (ntk.png), and in ntk_fluctuations.png one panel
    each for the normalised NTK fluctuations A/Theta^2, B/Theta^2, D/(Theta K) and
    F/(Theta K) (input 0, Roberts-Yaida normalisation, docs/conventions.md#ntk):
    measured with jackknife errors, and, where ``nf.predict`` has them (Gaussian and
    Haar weights), the leading-order 1/n predictions of
    ``theory.ntk_fluctuation_recursion`` at the run's learning rates dashed; summary.md
    gets their table with z = (measured - predicted) / error.

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

Deformed cos-net fields and MLPs (stores of ``nf.sample(..., deformation=nf.Phi4(...))``;
the box from ``Ensemble.quadrature``, in the points' space R^d of a cos-net or the input
space R^{n_0} of an MLP, whose outputs z^(L) are deformed) add:
  * phi4_four_point.png (with four-point statistics): the first-order connected
    four-point function dG4c/dlambda of one output (``Ensemble.first_order``, the output
    layer L of an MLP) and the reweighted
    (G4c_lambda - G4c_0) / lambda at the run's coupling (``reweighted_shift``: both on
    the same networks, the jackknife of the difference) against tree level
    ``theory.phi4_tree_level`` (N -> infinity, G = K^(L) of ``kernel_recursion`` for an
    MLP; finite width adds O(1/N)), with error bars and the identity line, and the pulls
    of the first order against tree level;
  * phi4_coupling.png (with the full four-point tensor): heat maps with colour
    bars of the quartic coupling lambda_aabb per unit lambda reconstructed by
    ``theory.quartic_coupling`` from the measured G and dG4c/dlambda (jackknife errors on
    the cells for B <= 8) and from tree level with the exact G (a cos-net's) or the
    infinite-width K^(L) (an MLP's); left out where G is singular (repeated points);
  * in summary.md the weights (``weights_summary``: coupling, effective sample size and
    its fraction of the networks, the largest weight's share), the quadrature rule
    (``quadrature_summary``: its error bound, or an MLP's empirical error estimate), the
    mean pull^2 of every set and the coupling's diagonal and off-diagonal means.
"""

import itertools

import os

import numpy as np

from .compare import _zscores, predict
from .cosnet import CosNet
from .ensemble import Estimate
from .labels import vertex_over_k2
from .points import pair_index

TWO_POINT_PNG = "two_point.png"
VERTEX_PNG = "vertex.png"
NTK_PNG = "ntk.png"
NTK_FLUCTUATIONS_PNG = "ntk_fluctuations.png"
SUMMARY_MD = "summary.md"
PROPAGATOR_PNG = "propagator.png"
FOUR_POINT_PNG = "four_point.png"
SIX_POINT_PNG = "six_point.png"
PHI4_FOUR_POINT_PNG = "phi4_four_point.png"
PHI4_COUPLING_PNG = "phi4_coupling.png"
COUPLING_ANNOTATE_MAX_POINTS = 8  # the coupling heat map's cells carry their values
PULL_RANGE = 5.0  # pull histograms span [-5, 5]
PULL_HISTOGRAM_MIN = 20  # fewer pulls are drawn as ticks


def normalised_vertex(ens, layer, alpha=0):
    """V/K^2 for input ``alpha``, jackknife Estimate (``labels.vertex_over_k2``)."""
    return ens.estimate(layer, vertex_over_k2(alpha))


NTK_FLUCTUATIONS = ("A", "B", "D", "F")
# (Markdown name, axis label, title) of the normalised fluctuations; A, B scale like
# Theta^2 and D, F like Theta K
NTK_FLUCTUATION_NAMES = {
    "A": ("A/Theta^2", r"$A^{(\ell)}/\Theta^2$", "A/Θ²"),
    "B": ("B/Theta^2", r"$B^{(\ell)}/\Theta^2$", "B/Θ²"),
    "D": ("D/(Theta K)", r"$D^{(\ell)}/(\Theta K)$", "D/(ΘK)"),
    "F": ("F/(Theta K)", r"$F^{(\ell)}/(\Theta K)$", "F/(ΘK)"),
}


def normalised_ntk_fluctuations(ens, layer):
    """{'A', 'B', 'D', 'F': Estimate} of A/Theta^2, B/Theta^2, D/(Theta K), F/(Theta K) at
    input 0 (entries 0000 and 00): jackknife over the NTK statistics with Theta, K the
    measured ones (Theta inside the jackknife; K's relative error, ~1/sqrt(N n), is left
    out)."""
    k = float(ens.two_point(layer).value[0, 0])

    def statistic(name):
        if name in "AB":
            return lambda m: getattr(m, name)[..., 0, 0, 0, 0] / m.theta[..., 0, 0] ** 2
        return lambda m: getattr(m, name)[..., 0, 0, 0, 0] / (m.theta[..., 0, 0] * k)

    return {name: ens.estimate_ntk(layer, statistic(name)) for name in NTK_FLUCTUATIONS}


def predicted_ntk_fluctuations(prediction, layer):
    """{'A', 'B', 'D', 'F': float} of the same ratios at input 0 from a ``Prediction``
    (its infinite-width Theta and K), or None where it has no NTK fluctuations."""
    if prediction.ntk_fluctuations is None:
        return None
    theta = float(prediction.ntk[layer - 1][0, 0])
    k = float(prediction.kernels[layer - 1][0, 0])
    fluct = prediction.ntk_fluctuations[layer - 1]
    return {
        name: float(getattr(fluct, name)[0, 0, 0, 0]) / (theta**2 if name in "AB" else theta * k)
        for name in NTK_FLUCTUATIONS
    }


def ntk_prediction(ens):
    """``predict`` for input 0 of an NTK ensemble, at its learning rates."""
    acc = ens.ntk_accumulator
    return predict(ens.network, ens.inputs[:1], lambda_b=acc.lambda_b, lambda_w=acc.lambda_w)


def ntk_fluctuation_rows(ens, prediction=None):
    """Per layer of an NTK ensemble, input 0: for X in A, B, D, F the arrays 'ntk_X' and
    'ntk_X_err' (``normalised_ntk_fluctuations``), 'ntk_X_theory' (the leading-order
    prediction; NaN where ``prediction`` has none) and 'ntk_X_z' = (measured - predicted) /
    error (0 where both are 0 to rounding, as at layer 1), and 'layers'. ``prediction``:
    a ``Prediction`` whose input 0 is the ensemble's (default ``ntk_prediction(ens)``)."""
    prediction = ntk_prediction(ens) if prediction is None else prediction
    layers = list(ens.accumulator.layers)
    rows = {"layers": np.array(layers)}
    measured = [normalised_ntk_fluctuations(ens, layer) for layer in layers]
    predicted = [predicted_ntk_fluctuations(prediction, layer) for layer in layers]
    for name in NTK_FLUCTUATIONS:
        value = np.array([float(m[name].value) for m in measured])
        error = np.array([float(m[name].error) for m in measured])
        theory = np.array([np.nan if p is None else p[name] for p in predicted])
        # the ratios are O(1): rounding judged against 1; no z without an error bar (too
        # few networks) or a prediction
        with np.errstate(invalid="ignore"):
            z = _zscores(Estimate(value, error), theory, scale=1.0)
        z = np.where(np.isfinite(error) & np.isfinite(theory), z, np.nan)
        rows.update({f"ntk_{name}": value, f"ntk_{name}_err": error})
        rows.update({f"ntk_{name}_theory": theory, f"ntk_{name}_z": z})
    return rows


def label(ens):
    net = ens.network
    return f"{net.activation.name} {net.init} (n={max(net.widths[1:])}, N={ens.n_networks:,})"


def per_layer(ens):
    """{'layers', 'K', 'K_err', 'K_theory', 'VK2', 'VK2_err', 'VK2_theory'} arrays over
    the ensemble's layers (input 0; the vertex with four-point statistics and a vertex
    recursion), 'K_exact' and 'VK2_exact' where the exact finite-width moments are known
    (``theory.exact_network_moments``: Gaussian weights, linear or (leaky) ReLU, no
    residual connections), for NTK runs also 'Theta', 'Theta_err', 'Theta_theory' and the
    ``ntk_fluctuation_rows`` arrays 'ntk_A', 'ntk_A_err', 'ntk_A_theory', 'ntk_A_z', ...
    (predictions at the run's learning rates)."""
    from .theory import exact_network_moments

    layers = list(ens.accumulator.layers)
    k = [ens.two_point(l) for l in layers]
    rows = {
        "layers": np.array(layers),
        "K": np.array([float(e.value[0, 0]) for e in k]),
        "K_err": np.array([float(e.error[0, 0]) for e in k]),
    }
    # input 0 only; an NTK run's learning rates for Theta and A, B, D, F
    theory = ntk_prediction(ens) if ens.has_ntk else predict(ens.network, ens.inputs[:1])
    rows["K_theory"] = np.array([float(theory.kernels[l - 1][0, 0]) for l in layers])
    exact = exact_network_moments(ens.network, ens.inputs[0])
    index = np.array(layers) - 1
    if exact is not None:
        rows["K_exact"] = exact.kernel[index]
    if ens.has_four_point:
        # a layer of one neuron (an MLP's single output) has no distinct-neuron vertex: NaN
        neurons, nan = ens.accumulator.neurons, Estimate(np.nan, np.nan)
        v = [normalised_vertex(ens, l) if neurons[l - 1] > 1 else nan for l in layers]
        rows["VK2"] = np.array([float(e.value) for e in v])
        rows["VK2_err"] = np.array([float(e.error) for e in v])
        if exact is not None:
            rows["VK2_exact"] = exact.normalised_vertex[index]
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
        if theory.ntk is not None:
            rows["Theta_theory"] = np.array([float(theory.ntk[l - 1][0, 0]) for l in layers])
        fluct = ntk_fluctuation_rows(ens, theory)
        rows.update({k: v for k, v in fluct.items() if k != "layers"})
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
    fig, (ax, axh) = _scatter_and_pulls(plt)
    lo, hi = np.inf, -np.inf
    for name, one in series:
        bars = _points(
            ax,
            one["exact"],
            one["value"],
            one["error"],
            f"{name}: {one['name']} ({one['value'].size})",
        )
        lo = min(lo, one["exact"].min(), (one["value"] - one["error"]).min())
        hi = max(hi, one["exact"].max(), (one["value"] + one["error"]).max())
        _plot_pulls(axh, one["pull"], bars[0].get_color(), f"{name}: {one['name']}")
    _identity_line(ax, lo, hi, "measured = exact")
    ax.set_xlabel(f"exact {quantity}")
    ax.set_ylabel(f"measured {quantity}")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    _finish_pulls(axh, "measured − exact", "pulls", 10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _scatter_and_pulls(plt):
    """(figure, (scatter axes, pull axes)) of a measured-against-exact plot."""
    return plt.subplots(1, 2, figsize=(10.4, 4.6), gridspec_kw={"width_ratios": (3, 2)})


def _points(ax, x, y, error, name, marker="o", **style):
    """Points (x, y) with error bars in y and no line."""
    return ax.errorbar(
        x, y, yerr=error, marker=marker, ms=3, ls="none", capsize=2, alpha=0.7, label=name, **style
    )


def _plot_pulls(axh, pull, color, name):
    """The finite pulls as a step histogram (or, too few for one, a tick each)."""
    finite = pull[np.isfinite(pull)]
    if finite.size >= PULL_HISTOGRAM_MIN:
        axh.hist(
            np.clip(finite, -PULL_RANGE, PULL_RANGE),
            bins=np.linspace(-PULL_RANGE, PULL_RANGE, 41),
            density=True,
            histtype="step",
            color=color,
            label=name,
        )
    elif finite.size:  # too few for a histogram: one tick per pull
        axh.plot(
            np.clip(finite, -PULL_RANGE, PULL_RANGE),
            np.zeros(finite.size),
            "|",
            ms=14,
            mew=2,
            color=color,
            label=name,
        )


def _identity_line(ax, lo, hi, name):
    """The line y = x over [lo, hi] padded by 5%, and a grid."""
    pad = 0.05 * (hi - lo) if hi > lo else 1.0
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k-", lw=0.8, label=name)
    ax.grid(alpha=0.3)


def _finish_pulls(axh, difference, title, fontsize):
    """The N(0, 1) density and the labels of a pull panel."""
    z = np.linspace(-PULL_RANGE, PULL_RANGE, 200)
    axh.plot(z, np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi), "k--", label="N(0, 1)")
    axh.set_xlabel(f"pull ({difference}) / error (clipped to ±{PULL_RANGE:g})")
    axh.set_ylabel("density")
    axh.set_title(title, fontsize=fontsize)
    axh.grid(alpha=0.3)
    axh.legend(fontsize=7)


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


# ------------------------------------------------------------------ deformed ensembles
def is_deformed(ens):
    """Whether ``ens`` is a deformed ensemble, cos-net field or MLP (``nf.sample(...,
    deformation=nf.Phi4(...))``)."""
    return getattr(ens, "is_deformed", False)


def _deformed_index(ens):
    """The layer index of the deformed outputs: 0 for a field, L - 1 for an MLP."""
    return ens.n_layers - 1


def weights_summary(ens):
    """The reweighting weights w = exp(-S_int) of a deformed ensemble: {'coupling',
    'n_networks', 'effective_sample_size' (sum w)^2 / sum w^2, 'effective_fraction' (of the
    networks), 'max_weight_share' max w / sum w, 'summary' (one line)}; None values (and
    the reason in 'summary') with fewer than 2 networks."""
    acc, n = ens.accumulator, ens.n_networks
    out = {"coupling": float(acc.coupling), "n_networks": int(n)}
    try:
        total, _ = acc.reweighted_totals()
    except ValueError as exc:  # too few networks
        none = dict.fromkeys(("effective_sample_size", "effective_fraction", "max_weight_share"))
        return {**out, **none, "summary": f"coupling {acc.coupling:g}: {exc}"}
    sum_w, sum_w2 = float(total[0]), float(total[-1])
    ess = sum_w * sum_w / sum_w2
    share = 1.0 / sum_w  # the common shift makes the largest weight 1
    out.update(
        effective_sample_size=ess,
        effective_fraction=ess / n,
        max_weight_share=share,
        summary=(
            f"coupling {acc.coupling:g}: effective sample size {ess:,.1f} of {n:,} networks "
            f"({100.0 * ess / n:.3g}%); the largest weight is {100.0 * share:.3g}% of sum w"
        ),
    )
    return out


def quadrature_summary(rule):
    """A deformation's quadrature rule: {'box', 'nodes', 'empirical', 'error' (its
    error_bound: a rigorous bound, or for an empirical rule, an MLP's, an estimate),
    'summary' (one line)}."""
    nodes = [int(n) for n in rule.nodes]
    kind = "empirical error estimate" if rule.empirical else "quadrature error bound"
    return {
        "box": np.asarray(rule.box).tolist(),
        "nodes": nodes,
        "empirical": bool(rule.empirical),
        "error": float(rule.error_bound),
        "summary": (
            f"{' x '.join(str(n) for n in nodes)} Gauss-Legendre nodes, "
            f"{kind} {rule.error_bound:.2g}"
        ),
    }


def phi4_rule(ens):
    """The quadrature rule (box, nodes; ``Ensemble.quadrature``) of a deformed
    ensemble read from a store, whose deformation is lambda phi^4 (the one kind a store
    holds), or None for an ensemble in memory (its potential may be a user's)."""
    if ens.store_path is None:
        return None
    return getattr(ens, "quadrature", None)


def _free_as_weighted(acc, idx):
    """The free totals of layer index ``idx`` in the reweighted layout [w | w x | w^2]
    with w = 1: (totals, leave-one-block-out totals), for ``Reweighted``'s estimators at
    coupling 0."""
    x, n, left_x, left_n = acc._free_part(idx, acc.n_base)
    n = np.float64(n)
    left_n = np.asarray(left_n, np.float64)[:, None]
    return np.concatenate([[n], x, [n]]), np.concatenate([left_n, left_x, left_n], axis=1)


def reweighted_shift(ens, quadruples=False):
    """(G4c_lambda - G4c_0) / lambda of a deformed ensemble as an ``Estimate``: the
    reweighted connected four-point function of the deformed outputs (a field's, an MLP's
    layer L) at the run's coupling minus the free one, per unit coupling, with the
    jackknife error of the difference (both on the same networks and blocks, so their
    common noise cancels; the free part is the same ratio estimator at w = 1, so the two
    share their O(1/n) bias). The full (B, B, B, B) tensor, or with ``quadruples`` its
    (T4,) entries at the sampled quadruples; it tends to ``first_order`` as lambda -> 0."""
    from .accumulators import jackknife_error

    if ens.coupling == 0.0:
        raise ValueError("the run's coupling is 0: no reweighted shift per unit coupling")
    rw = ens.reweighted
    if quadruples:
        rows = rw._tuple_rows(4)

        def statistic(t):
            return rw._tuple_connected((t,), rows)

    else:
        if not rw.layout.four_point:
            raise ValueError("this ensemble was sampled without 'four_point' in observables")
        statistic = rw._full_four_point
    idx = _deformed_index(ens)
    (t_w, left_w), (t_0, left_0) = (
        ens.accumulator.reweighted_totals(idx),
        _free_as_weighted(ens.accumulator, idx),
    )
    c = ens.coupling
    with np.errstate(divide="ignore", invalid="ignore"):
        value = (statistic(t_w) - statistic(t_0)) / c
        error = jackknife_error((statistic(left_w) - statistic(left_0)) / c)
    return Estimate(value, error)


def deformed_rows(ens, rule):
    """The first-order connected four-point function of a deformed ensemble (one output of
    a field, of an MLP's layer L) against tree level: a list of {'name', 'value', 'error',
    'exact' (tree level, N -> infinity), 'pull', 'shift', 'shift_error'
    (``reweighted_shift``, NaN at coupling 0)} flat sets: the full function once per index
    multiset a <= b <= c <= d and the sampled quadruples."""
    from .theory import phi4_tree_level

    net, X = ens.network, ens.inputs
    box, nodes = rule.box, rule.nodes
    sets = []
    if ens.has_four_point:
        quads = np.array(list(itertools.combinations_with_replacement(range(len(X)), 4)))
        index = tuple(quads.T)
        first = ens.first_order.four_point()
        tree = phi4_tree_level(net, X, box, nodes=nodes)
        one = _compare_set(
            "all index quadruples", first.value[index], first.error[index], tree[index]
        )
        if ens.coupling != 0.0:
            shift = reweighted_shift(ens)
            one["shift"], one["shift_error"] = shift.value[index], shift.error[index]
        sets.append(one)
    if getattr(ens, "has_tuples", False) and len(ens.quadruples):  # fields only
        first = ens.first_order.connected_four_point()
        tree = phi4_tree_level(net, X, box, ens.quadruples, nodes=nodes)
        one = _compare_set("sampled quadruples", first.value, first.error, tree)
        if ens.coupling != 0.0:
            shift = reweighted_shift(ens, quadruples=True)
            one["shift"], one["shift_error"] = shift.value, shift.error
        sets.append(one)
    for one in sets:
        if "shift" not in one:
            one["shift"] = one["shift_error"] = np.full_like(one["value"], np.nan)
        else:
            one["shift_pull"] = _pulls(one["shift"], one["shift_error"], one["exact"])
    return sets


def coupling_rows(ens, rule):
    """The quartic coupling per unit lambda reconstructed from the first-order connected
    four-point function, ``theory.quartic_coupling(G_0, dG4c/dlambda)`` (the couplings
    are linear in G4c; the O(1/N) term G4c_0 dG^-1/dlambda is left out), on every
    jackknife replica: {'value', 'error' (B, B, B, B), 'tree' (the same of
    ``theory.phi4_tree_level`` with the exact G of a cos-net, the infinite-width K^(L) of
    an MLP)}, or None without the four-point tensor (or with a singular G, e.g. repeated
    points). An MLP's G and G4c are those of its output layer L."""
    from .accumulators import jackknife_error
    from .theory import cosnet_propagator, kernel_recursion, phi4_tree_level, quartic_coupling

    if not ens.has_four_point:
        return None
    net, X = ens.network, ens.inputs
    idx = _deformed_index(ens)
    fo = ens.first_order
    (total, count), (left, left_counts) = fo._totals(idx)
    acc = ens.accumulator
    x, n, left_x, left_n = acc._free_part(idx, acc.n_base)
    nb = len(X)
    pairs = nb * (nb + 1) // 2
    index = pair_index(nb)

    def two_point(t, c):
        return (t[..., :pairs] / np.asarray(c, np.float64)[..., None])[..., index]

    if is_field(ens):
        r = np.sqrt(np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1))
        exact = cosnet_propagator(net, r)
    else:
        exact = kernel_recursion(net, X)[-1]
    try:
        lam, _ = quartic_coupling(two_point(x, n), fo._full_four_point(total, count))
        replicas, _ = quartic_coupling(
            two_point(left_x, left_n), fo._full_four_point(left, left_counts)
        )
        tree, _ = quartic_coupling(exact, phi4_tree_level(net, X, rule.box, nodes=rule.nodes))
    except ValueError:  # G singular (repeated points) or not positive definite
        return None
    return {"value": lam, "error": jackknife_error(replicas), "tree": tree}


def _deformed_names(ens):
    """(the plots' short name, the Markdown heading's name, the number of deformed
    outputs) of a deformed field or MLP ensemble."""
    net, c = ens.network, ens.coupling
    if is_field(ens):
        return f"N={net.width}, λ={c:g}", field_label(ens), net.n_out
    short = f"{net.activation.name} n={max(net.widths[1:])}, λ={c:g}"
    return short, f"the outputs of the MLP {label(ens)}", net.widths[-1]


def deformed_markdown(ens, rule, sets, coupling):
    """Markdown of a deformed field or MLP ensemble: the weights, the quadrature rule, the
    first-order four-point function against tree level, the reconstructed coupling's
    diagonal/off-diagonal."""
    w = weights_summary(ens)
    _, name, outputs = _deformed_names(ens)
    lines = [f"### φ⁴ deformation of {name}\n"]
    where = " (in memory: no box known, no comparison with tree level)"
    if rule is not None:
        box, quadrature = np.asarray(rule.box).tolist(), quadrature_summary(rule)["summary"]
        where = f" on the box {box} ({quadrature})"
    s_int = "∫ φ⁴" if outputs == 1 else f"Σ_i ∫ φ_i⁴ (i = 1..{outputs})"
    lines.append(f"- S_int = (λ/4!) {s_int} with λ = {w['coupling']:g}{where}")
    if w["effective_sample_size"] is not None:
        lines.append(
            f"- effective sample size (Σw)²/Σw² = {w['effective_sample_size']:,.1f} of "
            f"{w['n_networks']:,} networks ({100.0 * w['effective_fraction']:.3g}%)"
        )
        lines.append(f"- largest weight's share max w / Σw = {w['max_weight_share']:.3g}")
    else:
        lines.append(f"- weights: {w['summary']}")
    lines.append("")
    if sets:
        # Tree level is the N -> infinity value: finite-width corrections are O(1/N).
        lines.append(
            "| dG4c/dλ | entries | mean pull² first order vs tree level | "
            "mean pull² (G4c_λ − G4c_0)/λ vs tree level |"
        )
        lines.append("|---|---|---|---|")
        for one in sets:
            chi2, count, _ = _chi2(one["pull"])
            rw = "—"
            if "shift_pull" in one:
                shift_chi2, shift_count, _ = _chi2(one["shift_pull"])
                rw = f"{shift_chi2 / max(shift_count, 1):.3g}"
            lines.append(f"| {one['name']} | {count} | {chi2 / max(count, 1):.3g} | {rw} |")
        lines.append("")
    if coupling is not None:
        b = coupling["value"].shape[0]
        diag = np.arange(b)
        lam = np.einsum("aabb->ab", coupling["value"])
        err = np.einsum("aabb->ab", coupling["error"])
        tree = np.einsum("aabb->ab", coupling["tree"])
        off = ~np.eye(b, dtype=bool)
        lines.append("| λ_aabb / λ (reconstructed) | measured (mean) | tree level (mean) |")
        lines.append("|---|---|---|")
        lines.append(
            f"| diagonal a = b | {lam[diag, diag].mean():.4g} | {tree[diag, diag].mean():.4g} |"
        )
        if b > 1:
            lines.append(f"| off-diagonal a ≠ b | {lam[off].mean():.4g} | {tree[off].mean():.4g} |")
        lines.append(f"| largest jackknife error of an entry | {np.nanmax(err):.3g} | — |")
        lines.append("")
    return "\n".join(lines)


def _plot_deformed_four_point(plt, data, path):
    """First order and (G4c_lambda - G4c_0) / lambda against tree level (identity line),
    and the pulls of the first order against tree level; returns whether plotted."""
    series = [(name, one) for name, sets in data for one in sets]
    if not series:
        return False
    fig, (ax, axh) = _scatter_and_pulls(plt)
    lo, hi = np.inf, -np.inf
    for name, one in series:
        bars = _points(
            ax,
            one["exact"],
            one["value"],
            one["error"],
            f"{name}: {one['name']}, first order dG4c/dλ ({one['value'].size})",
        )
        color = bars[0].get_color()
        values = [one["exact"], one["value"] - one["error"], one["value"] + one["error"]]
        if np.isfinite(one["shift"]).any():
            _points(
                ax,
                one["exact"],
                one["shift"],
                one["shift_error"],
                f"{name}: {one['name']}, reweighted (G4c_λ − G4c_0)/λ",
                marker="s",
                color=color,
                markerfacecolor="none",
            )
            values += [one["shift"] - one["shift_error"], one["shift"] + one["shift_error"]]
        finite = np.concatenate(values)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = min(lo, finite.min()), max(hi, finite.max())
        _plot_pulls(axh, one["pull"], color, f"{name}: {one['name']}")
    if not np.isfinite(lo):
        lo, hi = -1.0, 1.0
    _identity_line(ax, lo, hi, "= tree level")
    ax.set_xlabel(r"tree level $dG_4^c/d\lambda = -\int_V \prod_k G(x_k, y)\,dy$ ($N\to\infty$)")
    ax.set_ylabel(r"measured $dG_4^c/d\lambda$")
    ax.set_title("λφ⁴: connected four-point function per unit coupling", fontsize=10)
    ax.legend(fontsize=6)
    _finish_pulls(
        axh, "first order − tree level", "pulls against tree level (finite width: O(1/N))", 9
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _plot_coupling(plt, data, path):
    """Heat maps of lambda_aabb / lambda: measured (first order) and tree level, one row
    per ensemble, a shared symmetric colour scale per row; returns whether plotted."""
    rows = [(name, c) for name, c in data if c is not None]
    if not rows:
        return False
    fig, axes = plt.subplots(len(rows), 2, figsize=(9.6, 4.2 * len(rows)), squeeze=False)
    for (name, c), (ax_m, ax_t) in zip(rows, axes):
        measured = np.einsum("aabb->ab", c["value"])
        error = np.einsum("aabb->ab", c["error"])
        tree = np.einsum("aabb->ab", c["tree"])
        vmax = float(np.nanmax(np.abs(np.concatenate([measured.ravel(), tree.ravel()]))))
        vmax = vmax if np.isfinite(vmax) and vmax > 0 else 1.0
        b = measured.shape[0]
        for ax, matrix, what in (
            (ax_m, measured, "measured (first order)"),
            (ax_t, tree, "tree level (N → ∞)"),
        ):
            image = ax.imshow(matrix, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=r"$\lambda_{aabb}/\lambda$")
            ax.set_title(f"{name}\n{what}", fontsize=9)
            ax.set_xlabel("point b")
            ax.set_ylabel("point a")
            ax.set_xticks(range(b))
            ax.set_yticks(range(b))
            if b <= COUPLING_ANNOTATE_MAX_POINTS:
                for i in range(b):
                    for j in range(b):
                        text = f"{matrix[i, j]:.2g}"
                        if matrix is measured:
                            text += f"\n±{error[i, j]:.1g}"
                        dark = abs(matrix[i, j]) > 0.6 * vmax
                        ax.text(
                            j,
                            i,
                            text,
                            ha="center",
                            va="center",
                            fontsize=6,
                            color="w" if dark else "k",
                        )
    fig.suptitle(
        "Quartic coupling reconstructed from dG4c/dλ (theory.quartic_coupling), per unit λ",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_deformed_report(plt, ensembles, out_dir):
    """phi4_four_point.png and phi4_coupling.png of the deformed field and MLP ensembles
    (module docstring) into ``out_dir``: (paths by key 'phi4_G4c', 'phi4_coupling',
    Markdown)."""
    four, couplings, text = [], [], []
    for ens in ensembles:
        name, _, _ = _deformed_names(ens)
        rule = phi4_rule(ens)
        sets = [] if rule is None else deformed_rows(ens, rule)
        coupling = None if rule is None else coupling_rows(ens, rule)
        four.append((name, sets))
        couplings.append((name, coupling))
        text.append(deformed_markdown(ens, rule, sets, coupling))
    paths = {}
    path = os.path.join(out_dir, PHI4_FOUR_POINT_PNG)
    if _plot_deformed_four_point(plt, four, path):
        paths["phi4_G4c"] = path
    path = os.path.join(out_dir, PHI4_COUPLING_PNG)
    if _plot_coupling(plt, couplings, path):
        paths["phi4_coupling"] = path
    return paths, "\n".join(text)


def _cell(value, error=None, digits=4):
    """A table cell: value (± error), or — where the value is not finite."""
    if not np.isfinite(value):
        return "—"
    return f"{value:.{digits}g}" + ("" if error is None else f" ± {error:.2g}")


def ntk_fluctuation_markdown(rows, extra=None):
    """Markdown lines of an ``ntk_fluctuation_rows`` table: per layer, for A/Theta^2,
    B/Theta^2, D/(Theta K), F/(Theta K) the measured value ± error, the leading-order
    prediction and z (— where there is none). ``extra``: (header, cells) of a column put
    after the layer's, one cell per layer."""
    head = "| layer |" + (f" {extra[0]} |" if extra else "")
    for name in NTK_FLUCTUATIONS:
        head += f" {NTK_FLUCTUATION_NAMES[name][0]} | leading 1/n | z |"
    lines = [head, "|---:|" + ("---:|" if extra else "") + "---:|---:|---:|" * 4]
    for i, layer in enumerate(rows["layers"]):
        line = f"| {layer} |" + (f" {extra[1][i]} |" if extra else "")
        for name in NTK_FLUCTUATIONS:
            key = f"ntk_{name}"
            z = rows[key + "_z"][i]
            line += (
                f" {_cell(rows[key][i], rows[key + '_err'][i])} |"
                f" {_cell(rows[key + '_theory'][i])} |"
                f" {'—' if not np.isfinite(z) else f'{z:+.2f}'} |"
            )
        lines.append(line)
    return lines


def markdown_table(ensembles, tables=None):
    """Markdown, per ensemble: a table layer by layer of K and V/K^2 with errors and their
    predictions (V/K^2 exact at finite width where known, and at leading order in 1/n; and
    Theta_00 for NTK runs), and for NTK runs the table of the normalised
    fluctuations against their leading-order predictions (``ntk_fluctuation_markdown``);
    ``tables``: the ensembles' ``per_layer`` results when already computed."""
    lines = []
    tables = tables or [per_layer(ens) for ens in ensembles]
    for ens, rows in zip(ensembles, tables):
        lines.append(f"### {label(ens)}\n")
        ntk = "Theta" in rows
        lines.append(
            "| layer | K_00 | K_00 infinite width | V/K^2 | V/K^2 exact finite width | "
            "V/K^2 leading 1/n |" + (" Theta_00 | Theta_00 infinite width |" if ntk else "")
        )
        lines.append("|---|---|---|---|---|---|" + ("---|---|" if ntk else ""))
        for i, layer in enumerate(rows["layers"]):
            vk = "—"
            if "VK2" in rows and np.isfinite(rows["VK2"][i]):
                vk = f"{rows['VK2'][i]:.4g} ± {rows['VK2_err'][i]:.2g}"
            vk_exact = f"{rows['VK2_exact'][i]:.4g}" if "VK2_exact" in rows else "—"
            vk_theory = f"{rows['VK2_theory'][i]:.4g}" if "VK2_theory" in rows else "—"
            line = (
                f"| {layer} | {rows['K'][i]:.6g} ± {rows['K_err'][i]:.2g} | "
                f"{rows['K_theory'][i]:.6g} | {vk} | {vk_exact} | {vk_theory} |"
            )
            if ntk:
                theory = rows.get("Theta_theory", np.full(len(rows["layers"]), np.nan))[i]
                line += (
                    f" {rows['Theta'][i]:.6g} ± {rows['Theta_err'][i]:.2g} |"
                    f" {_cell(theory, digits=6)} |"
                )
            lines.append(line)
        lines.append("")
        if ntk:
            acc = ens.ntk_accumulator
            lines.append(
                f"NTK fluctuations, input 0 (lambda_b = {acc.lambda_b:g}, lambda_W = "
                f"{acc.lambda_w:g}): measured ± jackknife error, the leading order in 1/n "
                "(theory.ntk_fluctuation_recursion; Theta, K infinite width) and "
                "z = (measured − predicted) / error\n"
            )
            lines += ntk_fluctuation_markdown(rows)
            lines.append("")
    return "\n".join(lines)


INIT_NAMES = {"gaussian": "Gaussian", "orthogonal": "orthogonal", "uniform": "uniform"}
# What each per-layer figure plots (the first line of its title) and its y-axis label
PER_LAYER_PLOTS = {
    "K": (
        r"two-point function $K^{(\ell)} = E[z_i^{(\ell)} z_i^{(\ell)}]$, input 0",
        r"$K^{(\ell)}$",
    ),
    "VK2": (
        r"normalised vertex $V^{(\ell)}/(K^{(\ell)})^2$, input 0; "
        r"$V^{(\ell)} = n_{\ell-1}\,(E[z_i^2 z_j^2] - K^2)$, $i \neq j$",
        r"$V^{(\ell)}/(K^{(\ell)})^2$",
    ),
    "Theta": (
        r"mean NTK $\Theta^{(\ell)} = E[H_{ii}^{(\ell)}]$, input 0",
        r"$\Theta^{(\ell)}$",
    ),
}
NTK_FLUCTUATIONS_TITLE = (
    "normalised NTK fluctuations, input 0 (Roberts-Yaida normalisation, 1/n taken out)"
)
# the dashed line of each per-layer quantity
THEORY_NAMES = {"K": "infinite width", "VK2": "leading 1/n", "Theta": "infinite width"}
EXACT_NAME = "exact finite width"


def _value(values, fmt):
    """One value, or None where the layers differ."""
    values = np.asarray(values, dtype=np.float64)
    return fmt.format(values[0]) if np.all(values == values[0]) else None


def _facts(ens):
    """{name: short text} of an MLP ensemble's configuration, beside its activation and
    weight law; None where a fact has no single value (C_W per layer)."""
    net = ens.network
    hidden = net.widths[1:]
    width = (
        f"width {hidden[0]}" if len(set(hidden)) == 1 else "widths " + "-".join(map(str, hidden))
    )
    facts = {
        "C_W": _value(net.cw_array, "C_W = {:g}") or "C_W per layer",
        "C_b": _value(net.cb_array, "C_b = {:g}") or "C_b per layer",
        "width": width,
        "depth": f"depth {net.n_layers}",
        "n_0": f"n_0 = {net.widths[0]}",
        "N": f"{ens.n_networks:,} networks",
        "method": f"{ens.method}",
        "dtype": f"{np.dtype(ens.dtype).name}",
        "seed": f"seed {ens.seed}",
    }
    if net.is_residual:
        xi = _value(net.xi_array[1:], "ξ = {:g}") or "ξ per layer"
        gamma = _value(net.gamma_array[1:], "γ = {:g}") or "γ per layer"
        facts["residual"] = f"residual {xi}, {gamma}"
    return facts


DRAWING = ("method", "dtype", "seed")


def figure_labels(ensembles):
    """Short names for the per-layer figures of MLP ensembles: (groups, series, config):
    per ensemble its panel (the activation, with what its panel shares and the others do
    not, e.g. C_W) and its series name in the legend (the weight law, with what tells it
    from the others of its panel, e.g. the width), and one line of what all share (for
    the title)."""
    facts = [_facts(e) for e in ensembles]
    activations = [e.network.activation.name for e in ensembles]
    keys = list(dict.fromkeys(k for f in facts for k in f))

    def common(members):
        return [k for k in keys if len({facts[i].get(k) for i in members}) == 1]

    everyone = common(range(len(ensembles)))
    # how the networks were drawn tells series apart but is not the configuration
    config = ", ".join(facts[0][k] for k in everyone if facts[0].get(k) and k not in DRAWING)
    groups, series = [], []
    for i, ens in enumerate(ensembles):
        panel = [j for j, a in enumerate(activations) if a == activations[i]]
        shared = [k for k in common(panel) if k not in everyone]
        extra = [facts[i][k] for k in keys if k not in everyone + shared and facts[i].get(k)]
        groups.append(
            activations[i] + (f" ({', '.join(facts[i][k] for k in shared)})" if shared else "")
        )
        series.append(", ".join([INIT_NAMES.get(ens.network.init, ens.network.init)] + extra))
    # a series name is its colour: ensembles of a panel that differ in nothing shown
    # are numbered
    pairs = list(zip(groups, series))
    for i, pair in enumerate(pairs):
        if pairs.count(pair) > 1:
            series[i] += f" #{pairs[: i + 1].count(pair)}"
    return groups, series, config


def _series_colors(plt, names):
    """One colour per distinct series name, the same in every panel."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    return {name: colors[i % len(colors)] for i, name in enumerate(dict.fromkeys(names))}


def _dodge(groups, step=0.08):
    """Per series, a small shift in layer so that the error bars of a panel's series do
    not cover each other (centred on the layer)."""
    shift = []
    for i, group in enumerate(groups):
        count = groups.count(group)
        shift.append((groups[:i].count(group) - (count - 1) / 2) * step)
    return shift


def _measured(ax, layers, value, error, color):
    """Measured points with error bars, no line (the lines are theory)."""
    ax.errorbar(
        layers, value, yerr=error, marker="o", ms=4, ls="none", capsize=3, color=color, zorder=3
    )


def _finish_figure(fig, legend, title, path):
    """The legend ((handle, text) pairs) under the panels, the title above, saved."""
    ncol = min(len(legend), 4)
    fig.legend(
        [h for h, _ in legend], [n for _, n in legend], loc="lower center", ncol=ncol, fontsize=8
    )
    fig.suptitle(title, fontsize=10)
    legend_rows = -(-len(legend) // ncol)
    bottom = (0.1 + 0.2 * legend_rows) / fig.get_figheight()
    fig.tight_layout(rect=(0.0, bottom, 1.0, 1.0))
    fig.savefig(path, dpi=120)


def _style_legend(series, colors, dashed, exact=False):
    """Legend entries: one per series (its colour, a measured point with an error bar),
    then the line styles in black: the exact finite-width curve (solid) and the
    dashed theory line."""
    from matplotlib.lines import Line2D

    legend = [
        (Line2D([], [], color=colors[name], marker="o", ms=4, ls="none"), name)
        for name in dict.fromkeys(series)
    ]
    if exact:
        legend.append((Line2D([], [], color="k", lw=1.2), EXACT_NAME))
    if dashed:
        legend.append((Line2D([], [], color="k", ls="--"), dashed))
    return legend


def plot_per_layer(plt, data, key, path, title):
    """A per-layer figure of ``key`` ('K', 'VK2' or 'Theta'; ``PER_LAYER_PLOTS``): one
    panel per group (the activation: their scales differ), in each the series of ``data``
    ((series, group, ``per_layer`` rows) triples) measured with error bars, the exact
    finite-width curve solid where known ('<key>_exact') and the infinite-width or
    leading-order line dashed ('<key>_theory'), one colour per series name; ``title``:
    the run, under the line naming the quantity. Returns whether anything was plotted."""
    from matplotlib.ticker import MaxNLocator

    data = [(name, group, rows) for name, group, rows in data if key in rows]
    if not data:
        return False
    what, ylabel = PER_LAYER_PLOTS[key]
    groups = list(dict.fromkeys(group for _, group, _ in data))
    fig, axes = plt.subplots(
        1, len(groups), figsize=(max(6.4, 5.0 * len(groups)), 5.0), squeeze=False
    )
    colors = _series_colors(plt, [name for name, _, _ in data])
    shift = _dodge([group for _, group, _ in data])
    has_exact = has_theory = False
    for (name, group, rows), dx in zip(data, shift):
        ax, color = axes[0][groups.index(group)], colors[name]
        if key + "_exact" in rows:
            ax.plot(rows["layers"], rows[key + "_exact"], color=color, lw=1.2, zorder=1)
            has_exact = True
        if key + "_theory" in rows:
            ax.plot(rows["layers"], rows[key + "_theory"], ls="--", color=color, zorder=2)
            has_theory = True
        _measured(ax, rows["layers"] + dx, rows[key], rows[key + "_err"], color)
    for group, ax in zip(groups, axes[0]):
        ax.set_xlabel(r"layer $\ell$")
        ax.set_ylabel(ylabel)
        ax.set_title(group, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    dashed = THEORY_NAMES[key] if has_theory else None
    legend = _style_legend([name for name, _, _ in data], colors, dashed, has_exact)
    _finish_figure(fig, legend, f"{what}\n{title}", path)
    plt.close(fig)
    return True


def plot_ntk_fluctuations(plt, data, path, title):
    """ntk_fluctuations.png: one panel per A/Theta^2, B/Theta^2, D/(Theta K), F/(Theta K),
    one row of panels per group (e.g. per activation: their scales differ), every NTK
    ensemble of ``data`` ((name, group, ``per_layer`` rows) triples) measured with error
    bars and its leading-order prediction dashed in the same colour (one colour per
    name, so keep names short: the weight law); ``title``: the run, under the line
    naming the quantity (``NTK_FLUCTUATIONS_TITLE``). Returns whether anything was
    plotted."""
    from matplotlib.ticker import MaxNLocator

    data = [(name, group, rows) for name, group, rows in data if "ntk_A" in rows]
    if not data:
        return False
    groups = list(dict.fromkeys(group for _, group, _ in data))
    fig, axes = plt.subplots(len(groups), 4, figsize=(16.0, 3.6 * len(groups) + 1.2), squeeze=False)
    colors = _series_colors(plt, [name for name, _, _ in data])
    names, predicted = [], False
    for (name, group, rows), dx in zip(data, _dodge([group for _, group, _ in data])):
        panels = axes[groups.index(group)]
        for ax, field in zip(panels, NTK_FLUCTUATIONS):
            key = f"ntk_{field}"
            _measured(ax, rows["layers"] + dx, rows[key], rows[key + "_err"], colors[name])
            if np.isfinite(rows[key + "_theory"]).any():
                ax.plot(rows["layers"], rows[key + "_theory"], ls="--", color=colors[name])
                predicted = True
        names.append(name)
    for group, panels in zip(groups, axes):
        for ax, field in zip(panels, NTK_FLUCTUATIONS):
            ax.axhline(0.0, color="grey", lw=0.5)
            ax.set_xlabel(r"layer $\ell$")
            ax.set_ylabel(NTK_FLUCTUATION_NAMES[field][1])
            ax.set_title(f"{group}: {NTK_FLUCTUATION_NAMES[field][2]}", fontsize=10)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
    legend = _style_legend(names, colors, "leading 1/n" if predicted else None)
    _finish_figure(fig, legend, f"{NTK_FLUCTUATIONS_TITLE}\n{title}", path)
    plt.close(fig)
    return True


def write_report(ensembles, out_dir, title="nnft_fast report"):
    """Write two_point.png, vertex.png (with four-point data), ntk.png and
    ntk_fluctuations.png (with NTK data) and summary.md into ``out_dir``; returns paths.
    Cos-net field ensembles get propagator.png, four_point.png and six_point.png instead
    (where they hold those statistics), deformed stores of either kind also
    phi4_four_point.png and phi4_coupling.png (module docstring)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("reports need matplotlib: pip install 'nnft_fast[plot]'") from None
    os.makedirs(out_dir, exist_ok=True)
    deformed = [e for e in ensembles if is_deformed(e)]
    fields = [e for e in ensembles if is_field(e)]
    ensembles = [e for e in ensembles if not is_field(e)]
    tables = [per_layer(e) for e in ensembles]
    paths = {}
    if ensembles:
        groups, series, config = figure_labels(ensembles)
        run = f"{title}: {config}" if config else title
        data = list(zip(series, groups, tables))
        for key, fname in (("K", TWO_POINT_PNG), ("VK2", VERTEX_PNG), ("Theta", NTK_PNG)):
            path = os.path.join(out_dir, fname)
            if plot_per_layer(plt, data, key, path, run):
                paths[key] = path
        path = os.path.join(out_dir, NTK_FLUCTUATIONS_PNG)
        if plot_ntk_fluctuations(plt, data, path, run):
            paths["AT2"] = path  # the key of the former A/Theta^2-only figure
    text = markdown_table(ensembles, tables)
    if fields:
        field_paths, field_text = write_field_report(plt, fields, out_dir)
        paths.update(field_paths)
        text += ("\n" if text else "") + field_text
    if deformed:
        deformed_paths, deformed_text = write_deformed_report(plt, deformed, out_dir)
        paths.update(deformed_paths)
        text += ("\n" if text else "") + deformed_text
    summary = os.path.join(out_dir, SUMMARY_MD)
    with open(summary, "w") as fh:
        fh.write(f"# {title}\n\n" + text)
    paths["summary"] = summary
    return paths
