"""Labelled containers of results (docs/labels.md): ``xarray.Dataset`` s with named
dimensions, ``pandas.DataFrame`` s of per-layer summaries, and ``uncertainties`` /
``gvar`` numbers. The ``Ensemble``, ``FieldEnsemble``, ``Estimate`` and ``Covariance``
methods of the same job call these functions.

Every value and error here is the ``Estimate`` of the ensemble's own method, unchanged
(their warnings propagate; their notes go into the attributes). The optional packages
(xarray, pandas, uncertainties, gvar: the ``labels`` extra) are imported when a
function needs them.
"""

import importlib
import json

import numpy as np

EXTRA = "pip install 'nnft_fast[labels]'"
INPUT_DIMS = ("alpha", "beta", "gamma", "delta")
POINT_DIMS = ("point_a", "point_b", "point_c", "point_d")
# Per-layer scalar columns of Ensemble.to_dataframe: (column, what).
FRAME_COLUMNS = {
    "width": "n_l, the layer's width",
    "neurons": "neurons averaged per network (n_l, or the saved ones after nf.reanalyze)",
    "K": "two-point function K_aa at input alpha",
    "V_over_K2": "normalised vertex V_aaaa / K_aa^2 at input alpha (report.normalised_vertex)",
    "Theta": "mean NTK Theta_aa at input alpha",
    "nonfinite": "networks non-finite at this layer or an earlier one",
}


def require(name, what):
    """The module ``name``, or an ImportError saying that ``what`` needs the labels extra."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{what} needs the package {name!r}: {EXTRA}") from exc


# ------------------------------------------------------------------ attributes


def own_config(ens):
    """JSON-able description of an ensemble computed in memory, with the keys of a
    store's ``config`` (``jobs.run_config``) that the ensemble knows."""
    observables = ["two_point"] + ["four_point"] * ens.has_four_point + ["ntk"] * ens.has_ntk
    config = {
        "network": ens.network.config(),
        "seed": int(ens.seed),
        "method": ens.method,
        "dtype": ens.dtype.name,
        "observables": observables,
        "n_networks": int(ens.n_networks),
        "first_network": int(ens.first_network),
        "n_inputs": int(ens.inputs.shape[0]),
        "network_ranges": [[int(a), int(b)] for a, b in ens.network_ranges],
    }
    if ens.has_ntk:
        ntk = ens.ntk_accumulator
        config["ntk"] = {
            "lambda_b": ntk.lambda_b,
            "lambda_w": ntk.lambda_w,
            "readouts": ntk.n_readouts,
        }
    if getattr(ens, "has_tuples", False):
        config["quadruples"] = np.asarray(ens.quadruples).tolist()
        config["sextuples"] = np.asarray(ens.sextuples).tolist()
    return config


def ensemble_attrs(ens):
    """Configuration and provenance of ``ens`` as netCDF-able attributes (numbers,
    strings and lists of numbers; docs/labels.md#attributes)."""
    from . import __version__

    network = ens.network.config()
    attrs = {"kind": network.pop("kind", "mlp"), **network}
    attrs.update(
        package_version=__version__,
        n_networks=int(ens.n_networks),
        first_network=int(ens.first_network),
        n_inputs=int(ens.inputs.shape[0]),
        seed=int(ens.seed),
        method=str(ens.method),
        dtype=ens.dtype.name,
    )
    for name in ("backend", "store_path", "target_networks"):
        if getattr(ens, name) is not None:
            attrs[name] = getattr(ens, name)
    if ens.has_ntk:
        ntk = ens.ntk_accumulator
        attrs.update(
            ntk_lambda_b=ntk.lambda_b, ntk_lambda_w=ntk.lambda_w, ntk_readouts=ntk.n_readouts
        )
    if ens.is_deformed:
        attrs["deformation_coupling"] = float(ens.coupling)
    source = "store" if ens.store_config is not None else "ensemble"
    config = ens.store_config if source == "store" else own_config(ens)
    attrs.update(config=json.dumps(config, sort_keys=True), config_source=source)
    return attrs


def _with_notes(attrs, notes):
    """``attrs`` plus ``note_layer_<l>`` (or ``note``, for key None) per estimate note."""
    out = dict(attrs)
    for layer, note in notes.items():
        if note is not None:
            out["note" if layer is None else f"note_layer_{layer}"] = note
    return out


# ------------------------------------------------------------------ MLP ensembles


def _distinct(ens, layer):
    """Whether ``layer`` has two neurons for distinct-neuron estimates."""
    return ens.accumulator.neurons[layer - 1] >= 2


# name: (its Estimate at a layer, from the ensemble's own method (None: not defined
# there), what it is); the names of covariance.STATISTICS.
ENSEMBLE_EXPORTS = {
    "two_point": (lambda ens, layer: ens.two_point(layer), "K_ab = E[z_a z_b], ens.two_point(l)"),
    "four_point": (
        lambda ens, layer: ens.four_point(layer) if _distinct(ens, layer) else None,
        "connected distinct-neuron four-point function, ens.four_point(l)",
    ),
    "four_point_same": (
        lambda ens, layer: ens.four_point(layer, neurons="same"),
        "connected same-neuron four-point function, ens.four_point(l, neurons='same')",
    ),
    "vertex": (
        lambda ens, layer: ens.vertex(layer) if _distinct(ens, layer) else None,
        "V = n_{l-1} * connected distinct-neuron four-point function, ens.vertex(l)",
    ),
    "ntk": (lambda ens, layer: ens.ntk(layer), "mean NTK Theta = E[H_ii], ens.ntk(l)"),
}
NTK_FLUCTUATIONS = ("A", "B", "D", "F")


def _exported(ens):
    """The names of ``ENSEMBLE_EXPORTS`` and ntk_A..F that ``ens`` accumulated."""
    names = ["two_point"]
    if ens.has_four_point:
        names += ["four_point", "four_point_same", "vertex"]
    if ens.has_ntk:
        names += ["ntk"] + [f"ntk_{f}" for f in NTK_FLUCTUATIONS]
    return names


def _layer_estimates(ens, layer, names):
    """{name: Estimate or None} at ``layer`` (the fluctuations from one call)."""
    out = {}
    for name in names:
        if name.startswith("ntk_"):
            if "ntk_A" not in out:
                fluctuations = ens.ntk_fluctuations(layer)
                out.update({f"ntk_{f}": getattr(fluctuations, f) for f in NTK_FLUCTUATIONS})
        else:
            out[name] = ENSEMBLE_EXPORTS[name][0](ens, layer)
    return out


def _stacked(estimates, shape):
    """(values, errors) stacked over layers; NaN where an estimate is not defined."""
    nan = np.full(shape, np.nan)
    values = np.stack([nan if e is None else e.value for e in estimates])
    errors = np.stack([nan if e is None else e.error for e in estimates])
    return values, errors


def _description(name):
    if name in ENSEMBLE_EXPORTS:
        return ENSEMBLE_EXPORTS[name][1]
    kind = "NTK-NTK" if name[-1] in "AB" else "NTK-preactivation"
    return f"{kind} fluctuation {name[-1]}, ens.ntk_fluctuations(l).{name[-1]}"


def ensemble_dataset(ens):
    """``Ensemble.to_xarray``: docs/labels.md#ensemble-to-xarray."""
    xr = require("xarray", "Ensemble.to_xarray")
    layers = list(ens.accumulator.layers)
    nb = ens.inputs.shape[0]
    names = _exported(ens)
    per_layer = [_layer_estimates(ens, layer, names) for layer in layers]
    data_vars = {}
    for name in names:
        estimates = [row[name] for row in per_layer]
        rank = 4 if name not in ("two_point", "ntk") else 2
        values, errors = _stacked(estimates, (nb,) * rank)
        dims = ("layer",) + INPUT_DIMS[:rank]
        notes = {
            layer: "not defined: the layer has one neuron" if e is None else e.note
            for layer, e in zip(layers, estimates)
        }
        attrs = {"description": _description(name)}
        data_vars[name] = (dims, values, _with_notes(attrs, notes))
        data_vars[f"{name}_error"] = (dims, errors, {"description": f"jackknife error of {name}"})
    nonfinite = ens.nonfinite[np.asarray(layers) - 1]
    data_vars["nonfinite"] = (("layer",), nonfinite, {"description": FRAME_COLUMNS["nonfinite"]})
    index = np.arange(nb)
    coords = {
        "layer": ("layer", np.asarray(layers), {"description": "layer l = 1..L"}),
        "width": ("layer", np.asarray([ens.network.widths[layer] for layer in layers])),
        "neurons": ("layer", np.asarray([ens.accumulator.neurons[layer - 1] for layer in layers])),
        "inputs": (("alpha", "input_dim"), ens.inputs, {"description": "the inputs X"}),
    }
    coords.update(
        {dim: (dim, index) for dim in INPUT_DIMS if any(dim in v[0] for v in data_vars.values())}
    )
    return xr.Dataset(data_vars, coords=coords, attrs=ensemble_attrs(ens))


def vertex_over_k2(alpha):
    """The statistic V_aaaa / K_aa^2 of input ``alpha`` on a layer's moments (the
    normalised vertex of ``to_dataframe`` and ``report.normalised_vertex``)."""
    a = alpha
    return lambda m: m.vertex[..., a, a, a, a] / m.two_point[..., a, a] ** 2


def _check_index(name, value, size):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not 0 <= value < size:
        raise ValueError(f"{name} must be in 0..{size - 1}, got {value}")
    return int(value)


def ensemble_frame(ens, alpha=0):
    """``Ensemble.to_dataframe``: docs/labels.md#ensemble-to-dataframe."""
    pd = require("pandas", "Ensemble.to_dataframe")
    a = _check_index("alpha", alpha, ens.inputs.shape[0])
    rows = []
    for layer in ens.accumulator.layers:
        k = ens.two_point(layer)
        row = {
            "width": ens.network.widths[layer],
            "neurons": ens.accumulator.neurons[layer - 1],
            "K": k.value[a, a],
            "K_err": k.error[a, a],
        }
        if ens.has_four_point:
            v = ens.estimate(layer, vertex_over_k2(a)) if _distinct(ens, layer) else None
            row["V_over_K2"] = np.nan if v is None else float(v.value)
            row["V_over_K2_err"] = np.nan if v is None else float(v.error)
        if ens.has_ntk:
            theta = ens.ntk(layer)
            row.update(Theta=theta.value[a, a], Theta_err=theta.error[a, a])
        row["nonfinite"] = int(ens.nonfinite[layer - 1])
        rows.append(row)
    frame = pd.DataFrame(rows, index=pd.Index(list(ens.accumulator.layers), name="layer"))
    frame.attrs.update(ensemble_attrs(ens), alpha=a)
    return frame


# ------------------------------------------------------------------ cos-net fields


def field_dataset(field):
    """``FieldEnsemble.to_xarray``: docs/labels.md#fields."""
    xr = require("xarray", "FieldEnsemble.to_xarray")
    nb = field.points.shape[0]
    data_vars = {}

    def add(name, estimate, dims, description):
        attrs = _with_notes({"description": description}, {None: estimate.note})
        data_vars[name] = (dims, estimate.value, attrs)
        data_vars[f"{name}_error"] = (dims, estimate.error, {"description": f"error of {name}"})

    add("two_point", field.two_point(), POINT_DIMS[:2], "G(x_a, x_b), field.two_point()")
    if field.has_four_point:
        add(
            "four_point",
            field.four_point(),
            POINT_DIMS,
            "connected same-output four-point function, field.four_point()",
        )
        if _distinct(field, 1):
            add(
                "four_point_distinct",
                field.four_point(neurons="distinct"),
                POINT_DIMS,
                "connected distinct-output four-point function, "
                "field.four_point(neurons='distinct')",
            )
            add("vertex", field.vertex(), POINT_DIMS, "N * distinct connected, field.vertex()")
    r, g_r = field.two_point_by_separation()
    add("two_point_by_separation", g_r, ("r",), "G(r), field.two_point_by_separation()")
    coords = {"r": ("r", r, {"description": "separation |x_a - x_b|"})}
    tuples = [("quadruple", "connected_four_point"), ("sextuple", "connected_six_point")]
    for kind, method in tuples if field.has_tuples else ():
        rows = getattr(field, f"{kind}s")
        if len(rows):
            add(method, getattr(field, method)(), (kind,), f"field.{method}()")
            coords[f"{kind}_points"] = ((kind, f"{kind}_member"), np.asarray(rows))
    data_vars["nonfinite"] = ((), int(field.nonfinite[0]), {"description": "non-finite networks"})
    used = [dim for dim in POINT_DIMS if any(dim in v[0] for v in data_vars.values())]
    for dim in used:
        coords[dim] = (dim, np.arange(nb))
        coords[f"position_{dim[-1]}"] = ((dim, "space"), field.points)
    return xr.Dataset(data_vars, coords=coords, attrs=ensemble_attrs(field))


def field_frame(field, decimals):
    """``FieldEnsemble.to_dataframe``: G(r) per separation (docs/labels.md#fields)."""
    pd = require("pandas", "FieldEnsemble.to_dataframe")
    r, g_r = field.two_point_by_separation(decimals)
    frame = pd.DataFrame({"G": g_r.value, "G_err": g_r.error}, index=pd.Index(r, name="r"))
    frame.attrs.update(ensemble_attrs(field))
    if g_r.note is not None:
        frame.attrs["note"] = g_r.note
    return frame


# ------------------------------------------------------------------ numbers with errors


def _scalar_or_array(out, value):
    return out[()] if np.ndim(value) == 0 else out


def uncertainties_array(value, error):
    """``Estimate.to_uncertainties``: ``unumpy.uarray(value, error)``."""
    require("uncertainties", "Estimate.to_uncertainties")
    unumpy = importlib.import_module("uncertainties.unumpy")
    out = unumpy.uarray(np.asarray(value, float), np.asarray(error, float))
    return _scalar_or_array(np.asarray(out, dtype=object), value)


def gvar_array(value, error):
    """``Estimate.to_gvar``: ``gvar.gvar(value, error)``."""
    gvar = require("gvar", "Estimate.to_gvar")
    if np.ndim(value) == 0:
        return gvar.gvar(float(value), float(error))
    return gvar.gvar(np.asarray(value, float), np.asarray(error, float))


def correlated_gvar(value, matrix):
    """``Covariance.to_gvar``: ``gvar.gvar(value, matrix)``."""
    gvar = require("gvar", "Covariance.to_gvar")
    return gvar.gvar(np.asarray(value, float), np.asarray(matrix, float))


def correlated_uncertainties(value, matrix):
    """``Covariance.to_uncertainties``: ``uncertainties.correlated_values(value, matrix)``."""
    uncertainties = require("uncertainties", "Covariance.to_uncertainties")
    return np.asarray(uncertainties.correlated_values(np.asarray(value, float), matrix), object)


__all__ = [
    "EXTRA",
    "FRAME_COLUMNS",
    "ensemble_attrs",
    "ensemble_dataset",
    "ensemble_frame",
    "field_dataset",
    "field_frame",
    "vertex_over_k2",
]
