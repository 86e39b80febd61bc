"""The combined report of a parameter sweep (``nnft report DIR`` on a sweep directory).

``write_sweep_report(out_dir)`` reads every complete point of the sweep directory (the
manifest ``sweep.json`` of ``nnft_fast.sweep.run_sweep``; points not complete are listed
and left out) and writes, at one depth, the last layer L of each point unless ``layer``
is given:

* sweep_kernel.png: the two-point function K^(L)_00 of input 0, measured (jackknife
  errors) and at infinite width (``theory.kernel_recursion``, dashed);
* sweep_vertex.png (with four-point statistics): the normalised vertex V^(L)/K^2 of
  input 0 (``report.normalised_vertex``), its leading-order 1/n prediction (dashed,
  Gaussian and Haar weights) and, where it is known, its exact finite-width value
  (solid: ``theory.exact_network_moments``, Gaussian weights, linear or ReLU; also
  K^(L) there);
* sweep_chi.png: the susceptibilities chi_par and chi_perp from layer L - 1 to L: the
  infinite-width formula at the measured kernel of layer L - 1
  (``susceptibility.predicted_susceptibilities``, dashed) and, where the inputs hold
  probes of input 0, the measured ratios (``susceptibility.measured_susceptibilities``);
  the line chi = 1 marks criticality;
* summary.md, a Markdown table of those numbers per point, and sweep.csv, the same with
  full precision (one row per complete point; NaN where not measured).

Plot layout: the first swept key whose values are all numbers is the x axis (without one,
the first key, as categories); the next swept key gives one panel per value; the others
are the series of every panel (their values in the legend). So the criticality example,
keys network.cw, network.activation, network.init, plots against C_W with a panel per
activation and Gaussian against orthogonal weights as series.
"""

import csv
import math
import os

import numpy as np

from .report import SUMMARY_MD, is_field, per_layer
from .susceptibility import find_probes, measured_susceptibilities, predicted_susceptibilities
from .sweep import complete_points, format_value, read_manifest

KERNEL_PNG = "sweep_kernel.png"
VERTEX_PNG = "sweep_vertex.png"
CHI_PNG = "sweep_chi.png"
CSV_NAME = "sweep.csv"
LEGEND_INCHES = 0.7  # room for the figure legend below the panels
LOG_RANGE = 100.0  # a panel whose positive values span more than this gets a log axis
# The measured quantities of a point's row, with their theory columns: (column, what).
# The measured quantities of a point's row (each with "_err" and "_theory" columns):
# (column, name in the plots' titles, axis label, name of its theory in the legend).
QUANTITIES = (
    ("K", "two-point function", r"$K^{(L)}_{00}$", "infinite width"),
    ("VK2", "normalised vertex", r"$V^{(L)}/(K^{(L)}_{00})^2$", "leading 1/n"),
    ("chi_par", "χ∥ = dK⁽ᴸ⁾/dK⁽ᴸ⁻¹⁾", r"$\chi_{\parallel}^{(L)}$", "theory at measured K"),
    ("chi_perp", "χ⊥, perpendicular growth", r"$\chi_{\perp}^{(L)}$", "theory at measured K"),
)
_NAMES = {key: (title, axis, theory) for key, title, axis, theory in QUANTITIES}


def _estimate_values(estimate):
    """(value, error) floats of an Estimate, or (NaN, NaN) for None."""
    if estimate is None:
        return math.nan, math.nan
    return float(estimate.value), float(estimate.error)


def point_row(entry, ens, layer=None):
    """The report's row of one complete point: its manifest ``entry`` ("index", "store",
    "values") and its Ensemble at ``layer`` (default its last layer): n_networks, layer,
    K, VK2, chi_par, chi_perp with their "_err" and "_theory" columns (module
    docstring), the probe steps chi_par_step (s - 1) and chi_perp_step (|x_b - x_0| /
    |x_0|), and the swept values under their keys."""
    if is_field(ens):
        raise ValueError(
            f"{entry['store']} is a cos-net field: the sweep report covers MLP sweeps "
            "(run `nnft report` on the point stores instead)"
        )
    layer = ens.n_layers if layer is None else layer
    if not 1 <= layer <= ens.n_layers:
        raise ValueError(
            f"layer {layer} is not a layer of {entry['store']} (layers 1..{ens.n_layers})"
        )
    rows = per_layer(ens)
    i = list(rows["layers"]).index(layer)
    row = {"index": entry["index"], "store": entry["store"], **entry["values"]}
    row.update(n_networks=ens.n_networks, layer=layer)
    for key in ("K", "VK2"):
        for suffix in ("", "_err", "_theory", "_exact"):
            column = rows.get(key + suffix)
            row[key + suffix] = math.nan if column is None else float(column[i])
    probes = find_probes(ens.inputs)
    measured = measured_susceptibilities(ens, layer, probes) if layer >= 2 else (None, None)
    predicted = predicted_susceptibilities(ens, layer, probes)
    for key, estimate, theory in zip(("chi_par", "chi_perp"), measured, predicted):
        row[key], row[key + "_err"] = _estimate_values(estimate)
        row[key + "_theory"] = float(theory)
        row[key + "_exact"] = math.nan  # no exact finite-width susceptibilities
    row["chi_par_step"] = probes.parallel_step
    row["chi_perp_step"] = probes.perpendicular_step
    return row


def sweep_rows(out_dir, layer=None):
    """(manifest, rows of the complete points, manifest entries of the others)."""
    manifest = read_manifest(out_dir)
    points = complete_points(out_dir)
    done = {entry["index"] for entry, _ in points}
    rows = [point_row(entry, ens, layer) for entry, ens in points]
    missing = [entry for entry in manifest["points"] if entry["index"] not in done]
    return manifest, rows, missing


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sweep_axes(keys, rows):
    """(x key, panel key or None, series keys): the first key whose values in ``rows``
    are all numbers (else the first key), the next key, the rest."""
    numeric = [key for key in keys if all(_is_number(r[key]) for r in rows)]
    x_key = numeric[0] if numeric else keys[0]
    others = [key for key in keys if key != x_key]
    return x_key, (others[0] if others else None), tuple(others[1:])


# --------------------------------------------------------------------------- tables


def _cell(value, error=None):
    """value (± error) with 4 significant digits, or — where not finite."""
    if not np.isfinite(value):
        return "—"
    return f"{value:.4g}" + ("" if error is None or not np.isfinite(error) else f" ± {error:.2g}")


def markdown_summary(manifest, rows, missing, title):
    """summary.md: what is tabulated, the table (one row per complete point) and the
    points left out."""
    keys = manifest["keys"]
    layers = sorted({r["layer"] for r in rows})
    lines = [
        f"# {title}\n",
        f"Sweep of {len(manifest['points'])} points ({manifest['mode']} over "
        f"{', '.join(keys)}), {len(rows)} complete; all quantities at layer "
        f"L = {', '.join(map(str, layers)) or '—'} for input 0: measured ± jackknife error. "
        "K^(L)_00 against infinite width, V/K^2 against the leading order in 1/n and, "
        "where it is known (Gaussian weights, linear or ReLU), its exact finite-width "
        "value (theory.exact_network_moments), chi_par "
        "and chi_perp from layer L-1 to L: measured from the probe inputs where the run "
        "has them (nnft_fast.susceptibility), theory at the measured kernel of layer L-1.\n",
        "| point | " + " | ".join(keys) + " | N | K^(L) | K^(L) inf. width | V/K^2 "
        "| V/K^2 1/n | V/K^2 exact | chi_par | chi_par theory | chi_perp | chi_perp theory |",
        "|---:|" + "---|" * len(keys) + "---:|" * (2 + 2 * len(QUANTITIES)),
    ]
    for r in rows:
        cells = [str(r["index"])] + [format_value(r[key]) for key in keys]
        cells.append(f"{r['n_networks']:,}")
        for key, *_ in QUANTITIES:
            cells += [_cell(r[key], r[key + "_err"]), _cell(r[key + "_theory"])]
            if key == "VK2":
                cells.append(_cell(r["VK2_exact"]))
        lines.append("| " + " | ".join(cells) + " |")
    if missing:
        left = "; ".join(f"{m['store']} ({m['label']}, {m['status']})" for m in missing)
        lines.append(f"\nNot complete, left out: {left}")
    return "\n".join(lines) + "\n"


def csv_columns(keys):
    """The columns of sweep.csv: index, store, the swept keys, then the numbers."""
    numbers = ["n_networks", "layer"]
    for key, *_ in QUANTITIES:
        numbers += [key, key + "_err", key + "_theory", key + "_exact"]
    return ["index", "store", *keys, *numbers, "chi_par_step", "chi_perp_step"]


def _csv_cell(value):
    """A float with every digit (``repr``), an int or string as it is, an array or table
    as JSON."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, str)):
        return value
    return format_value(value)


def write_csv(path, keys, rows):
    """sweep.csv: one row per point (``csv_columns``)."""
    columns = csv_columns(keys)
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows([_csv_cell(r[c]) for c in columns] for r in rows)


# --------------------------------------------------------------------------- plots


def _groups(rows, x_key, panel_key, series_keys):
    """{panel value: {series values: rows sorted by x}}, in order of appearance, and the
    x positions of the categories (None for a numeric x)."""
    numeric = all(_is_number(r[x_key]) for r in rows)
    categories = None if numeric else list(dict.fromkeys(format_value(r[x_key]) for r in rows))
    groups = {}
    for r in rows:
        panel = format_value(r[panel_key]) if panel_key else ""
        series = ", ".join(format_value(r[k]) for k in series_keys)
        groups.setdefault(panel, {}).setdefault(series, []).append(r)
    if numeric:
        x_of = lambda r: float(r[x_key])  # noqa: E731
    else:
        x_of = lambda r: categories.index(format_value(r[x_key]))  # noqa: E731
    for panel in groups.values():
        for series in panel:
            panel[series].sort(key=x_of)
    return groups, x_of, categories


def _plot_quantity(ax, groups_of_panel, x_of, key, colors):
    """Measured (error bars) and theory (dashed, same colour) of ``key`` per series;
    returns whether a measured value was plotted."""
    measured_any = False
    for n, (series, rows) in enumerate(groups_of_panel.items()):
        color = colors[n % len(colors)]
        x = np.array([x_of(r) for r in rows], np.float64)
        y = np.array([r[key] for r in rows], np.float64)
        if np.isfinite(y).any():
            ax.errorbar(
                x,
                y,
                yerr=np.array([r[key + "_err"] for r in rows], np.float64),
                marker="o",
                ms=4,
                ls=":",
                lw=0.8,
                capsize=3,
                color=color,
                label=series or None,
            )
            measured_any = True
        theory = np.array([r[key + "_theory"] for r in rows], np.float64)
        if np.isfinite(theory).any():
            ax.plot(x, theory, ls="--", marker=".", ms=3, color=color)
        exact = np.array([r[key + "_exact"] for r in rows], np.float64)
        if np.isfinite(exact).any():
            ax.plot(x, exact, ls="-", lw=1.2, color=color)
    return measured_any


def _finish_axes(ax, key, x_key, categories, title):
    values = [v for line in ax.get_lines() for v in np.asarray(line.get_ydata(), float)]
    positive = [v for v in values if np.isfinite(v) and v > 0]
    if positive and len(positive) == len([v for v in values if np.isfinite(v)]):
        if max(positive) / min(positive) > LOG_RANGE:
            ax.set_yscale("log")
    if key.startswith("chi"):
        ax.axhline(1.0, color="grey", lw=0.8)
    if categories is not None:
        ax.set_xticks(range(len(categories)), categories, rotation=30, fontsize=7)
    ax.set_xlabel(x_key)
    ax.set_ylabel(_NAMES[key][1])
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)


def _plot_figure(plt, rows, axes_keys, quantities, path, title, heading):
    """One figure: a row of panels per quantity, a panel per value of the panel key;
    returns whether anything was plotted (nothing is written otherwise)."""
    from matplotlib.lines import Line2D

    x_key, panel_key, series_keys = axes_keys
    groups, x_of, categories = _groups(rows, x_key, panel_key, series_keys)
    quantities = [
        q for q in quantities if any(np.isfinite([r[q], r[q + "_theory"]]).any() for r in rows)
    ]
    if not quantities:
        return False
    fig, axes = plt.subplots(
        len(quantities),
        len(groups),
        figsize=(4.6 * len(groups), 3.4 * len(quantities) + LEGEND_INCHES),
        squeeze=False,
    )
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    layers = sorted({r["layer"] for r in rows})
    measured = False
    for row_axes, key in zip(axes, quantities):
        for ax, (panel, series) in zip(row_axes, groups.items()):
            measured |= _plot_quantity(ax, series, x_of, key, colors)
            name = f"{panel_key.partition('.')[2]}={panel}: " if panel_key else ""
            _finish_axes(ax, key, x_key, categories, f"{name}{_NAMES[key][0]}")
    handles, labels = axes[0][0].get_legend_handles_labels()
    style = [
        (Line2D([], [], color="k", marker="o", ls=":", lw=0.8), "measured (jackknife errors)"),
        (Line2D([], [], color="k", ls="--"), " / ".join({_NAMES[q][2]: 0 for q in quantities})),
    ]
    if any(np.isfinite(r[q + "_exact"]) for q in quantities for r in rows):
        style.append((Line2D([], [], color="k", ls="-", lw=1.2), "exact finite width"))
    if not measured:
        style = style[1:]
    legend = list(zip(handles, labels)) + style
    fig.legend(
        [h for h, _ in legend],
        [n for _, n in legend],
        loc="lower center",
        ncol=min(len(legend), 4),
        fontsize=8,
        title=", ".join(series_keys) or None,
        title_fontsize=8,
    )
    fig.suptitle(f"{title}: {heading} at layer L = {', '.join(map(str, layers))}", fontsize=11)
    fig.tight_layout(rect=(0.0, LEGEND_INCHES / fig.get_figheight(), 1.0, 1.0))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_sweep_report(out_dir, report_dir=None, *, layer=None, title=None):
    """Write sweep_kernel.png, sweep_vertex.png, sweep_chi.png, summary.md and sweep.csv
    for the sweep directory ``out_dir`` (module docstring); returns {name: path}.

    Parameters
    ----------
    out_dir : str or os.PathLike
        A directory of ``nnft_fast.sweep.run_sweep`` (its manifest sweep.json).
    report_dir : str or os.PathLike, optional
        Where the report goes (created if missing); default ``out_dir``.
    layer : int, optional
        The depth reported; default each point's last layer.
    title : str, optional
        Title of the figures and of summary.md; default "sweep <out_dir>".

    Returns
    -------
    dict
        {"kernel", "vertex", "chi", "summary", "csv": path}; a figure with nothing to
        plot (no point complete, no four-point statistics) is left out.

    Notes
    -----
    Needs matplotlib (the ``plot`` extra). The numbers of summary.md and sweep.csv are
    the estimates of the point stores (``nf.open``): K^(L) is
    ``ens.two_point(L).value[0, 0]``, V/K^2 ``report.normalised_vertex(ens, L)``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("reports need matplotlib: pip install 'nnft_fast[plot]'") from None
    out_dir = os.fspath(out_dir)
    report_dir = out_dir if report_dir is None else os.fspath(report_dir)
    title = f"sweep {os.path.basename(os.path.abspath(out_dir))}" if title is None else title
    manifest, rows, missing = sweep_rows(out_dir, layer)
    os.makedirs(report_dir, exist_ok=True)
    paths = {}
    if rows:
        axes_keys = sweep_axes(manifest["keys"], rows)
        for name, fname, quantities, heading in (
            ("kernel", KERNEL_PNG, ("K",), "two-point function of input 0"),
            ("vertex", VERTEX_PNG, ("VK2",), "normalised vertex of input 0"),
            ("chi", CHI_PNG, ("chi_par", "chi_perp"), "susceptibilities"),
        ):
            path = os.path.join(report_dir, fname)
            if _plot_figure(plt, rows, axes_keys, quantities, path, title, heading):
                paths[name] = path
    paths["summary"] = os.path.join(report_dir, SUMMARY_MD)
    with open(paths["summary"], "w") as fh:
        fh.write(markdown_summary(manifest, rows, missing, title))
    paths["csv"] = os.path.join(report_dir, CSV_NAME)
    write_csv(paths["csv"], manifest["keys"], rows)
    return paths


__all__ = ["point_row", "sweep_axes", "sweep_rows", "write_sweep_report"]
