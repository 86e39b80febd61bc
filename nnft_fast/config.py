"""TOML run configurations for ``nnft run``: parsing and validation.

Format (every table and key is checked; unknown keys and wrong types name the key)::

    [network]
    widths = [64, 512, 512]     # n_0, ..., n_L
    activation = "relu"
    init = "gaussian"           # gaussian | orthogonal | uniform
    cw = 2.0                    # number or one per layer
    cb = 0.0
    xi = 0.0                    # residual connections, number or one per layer (optional:
    gamma = 1.0                 # docs/conventions.md#residual; 0 and 1 mean none)

    [inputs]                    # either explicit rows ...
    values = [[1.0, 0.0], [0.0, 1.0]]
    # ... or random standard-normal rows:  n = 4, seed = 0, scale = 1.0

    [run]
    n_networks = 100000
    seed = 0
    method = "auto"             # auto | dense | projected
    dtype = "float64"           # float64 | float32
    observables = ["two_point", "four_point"]   # add "ntk" for the NTK
    batch_size = 4096           # optional
    lambda_b = 1.0              # NTK learning rates and readout count (optional)
    lambda_w = 1.0
    ntk_readouts = 2

    [store]                     # optional
    out = "run.h5"
    save = "default"            # "default" | "none" | {"8" = 4}  (layer = neurons)
    compression = "lzf"         # lzf | gzip | none

    [deformation]               # optional: lambda phi^4 on the outputs (below)

Cos-net fields (``nf.CosNet``, docs/fields.md) take ``kind = "cosnet"`` in [network] and
their points in [points] instead of [inputs]; the field is layer 1 of the store::

    [network]
    kind = "cosnet"             # "mlp" (the default: the tables above) | "cosnet"
    dim = 3                     # d of the points
    width = 256                 # N cosine features
    mass = 1.0                  # propagator 1 / (k^2 + m^2) cut off at |k| < cutoff
    cutoff = 8.0
    alpha = 0.0                 # momenta drawn with density P^(1 + alpha) (optional)
    amplitude = "gaussian"      # gaussian | constant (optional)
    n_out = 1                   # fields per network (optional)
    # or Gaussian momenta: momenta = "gaussian", length = 1.0, variance = 1.0
    # (momenta = "propagator" is the default; mass/cutoff/alpha go with it only)

    [points]                    # either explicit rows of length dim ...
    values = [[0.0, 0.0, 0.0], [0.5, 0.0, 0.0]]
    # ... or a regular grid (nf.grid_points; spacing default 1.0, origin default 0):
    # grid = {shape = [4, 4, 4], spacing = 0.5, origin = [0.0, 0.0, 0.0]}

    [run]
    n_networks = 20000
    seed = 0
    observables = ["two_point", "four_point"]   # default: four_point too for B <= 16
    quadruples = [[0, 1, 2, 3]]                 # point indices (optional)
    sextuples = [[0, 1, 2, 3, 4, 5]]            # (optional)
    batch_size = 4096                           # optional (also method, dtype)

    [store]                     # as above; save = {"1" = n} keeps n outputs raw

    [deformation]               # optional, cos-nets and MLPs: lambda phi^4 (nf.Phi4)
    kind = "phi4"               # S_int = (coupling / 4!) sum_i int_box phi_i^4 d^d x
    coupling = 0.5
    box = [-2.0, 2.0]           # one [lo, hi] for every dimension, or one per dimension
    nodes = 48                  # Gauss-Legendre nodes: int or one per dimension (optional;
                                # default: chosen so the quadrature error is below 1e-10)

The deformation acts on every output phi_i of the network: the n_out fields of a cos-net
(the box in R^d, d = network.dim) or the last layer z^(L)_i of an MLP (the box in its input
space R^{n_0}, n_0 = network.widths[0]). A cos-net's default nodes follow from its cut-off
with a rigorous error bound; an MLP output has no band limit, so its rule is empirical:
by default the nodes are doubled from 8 per dimension until the error estimated against
twice as many is below 1e-10, and the run refuses a field that does not converge within
``quadrature.MAX_EMPIRICAL_POINTS`` nodes (give nodes then; the error estimate is reported
either way).

A parameter sweep adds a [sweep] table of lists; each point is the config with the swept
values substituted, validated as a run of its own (``nnft sweep``, ``nnft_fast.sweep``,
docs/sweeps.md). ``parse_config`` and ``load_config`` refuse a file with a [sweep]::

    [sweep]
    mode = "grid"                        # grid (outer product, the default) | zip
    "network.cw" = [0.5, 1.0, 1.5, 2.0]  # "table.key" = [values]: any key of the schema
    network.activation = ["tanh", "relu"]    # the dotted (sub-table) form works too
"""

import math
import tomllib
from dataclasses import dataclass

import numpy as np

from .cosnet import (
    DEFAULT_ALPHA,
    DEFAULT_AMPLITUDE,
    DEFAULT_LENGTH,
    DEFAULT_N_OUT,
    DEFAULT_VARIANCE,
    CosNet,
)
from .deformations import Phi4
from .memory import Need, check_memory
from .network import (
    DEFAULT_ACTIVATION,
    DEFAULT_CB,
    DEFAULT_CW,
    DEFAULT_GAMMA,
    DEFAULT_INIT,
    DEFAULT_XI,
    Network,
)
from .points import grid_points
from .quadrature import EMPIRICAL_START_NODES, check_box, field_bandlimit
from .run import (
    DEFAULT_COMPRESSION,
    DEFAULT_DTYPE,
    DEFAULT_LAMBDA_B,
    DEFAULT_LAMBDA_W,
    DEFAULT_METHOD,
    DEFAULT_NTK_READOUTS,
    DEFAULT_OBSERVABLES,
    DEFAULT_SAVE,
    DEFAULT_SEED,
)
from .tuples import check_tuples

# The [deformation] keys of both kinds of network, and the [run] keys of every kind of run.
_DEFORMATION_SCHEMA = {"kind": str, "coupling": (int, float), "box": list, "nodes": (int, list)}
_RUN_SCHEMA = {
    "n_networks": int,
    "seed": int,
    "method": str,
    "dtype": str,
    "observables": list,
    "batch_size": int,
}
_SCHEMA = {
    "network": {
        "kind": str,
        "widths": list,
        "activation": str,
        "init": str,
        "cw": (int, float, list),
        "cb": (int, float, list),
        "xi": (int, float, list),
        "gamma": (int, float, list),
    },
    "inputs": {"values": list, "n": int, "seed": int, "scale": (int, float)},
    "run": {
        **_RUN_SCHEMA,
        "lambda_b": (int, float),
        "lambda_w": (int, float),
        "ntk_readouts": int,
    },
    "store": {"out": str, "save": (str, dict), "compression": str},
    "deformation": _DEFORMATION_SCHEMA,
}
_REQUIRED = {"network": ("widths",), "run": ("n_networks",)}

KINDS = ("mlp", "cosnet")  # network.kind: multi-layer perceptrons, cos-net fields
_REAL = (int, float)
_COSNET_SCHEMA = {
    "network": {
        "kind": str,
        "dim": int,
        "width": int,
        "mass": _REAL,
        "cutoff": _REAL,
        "alpha": _REAL,
        "amplitude": str,
        "n_out": int,
        "momenta": str,
        "length": _REAL,
        "variance": _REAL,
    },
    "points": {"values": list, "grid": dict},
    "run": {**_RUN_SCHEMA, "quadruples": list, "sextuples": list},
    "store": _SCHEMA["store"],
    "deformation": _DEFORMATION_SCHEMA,
}
DEFORMATION_KINDS = ("phi4",)  # deformation.kind: lambda phi^4 / 4! (nf.Phi4)
_COSNET_REQUIRED = {"network": ("dim", "width"), "run": ("n_networks",)}
# The keys of each momentum family besides the common ones (kind, dim, width, amplitude,
# n_out, momenta); the propagator family needs mass and cutoff.
_MOMENTA_KEYS = {"propagator": ("mass", "cutoff", "alpha"), "gaussian": ("length", "variance")}
_GRID_SCHEMA = {"shape": list, "spacing": (int, float, list), "origin": (int, float, list)}


SWEEP_TABLE = "sweep"  # the table of a parameter sweep (nnft_fast.sweep)


class ConfigError(ValueError):
    """A run configuration that is malformed or names impossible values."""


@dataclass
class RunConfig:
    network: Network
    inputs: np.ndarray
    n_networks: int
    seed: int = DEFAULT_SEED
    method: str = DEFAULT_METHOD
    dtype: str = DEFAULT_DTYPE.name
    observables: tuple = DEFAULT_OBSERVABLES
    batch_size: int = None
    out: str = None
    save: object = DEFAULT_SAVE
    compression: str = DEFAULT_COMPRESSION
    lambda_b: float = DEFAULT_LAMBDA_B
    lambda_w: float = DEFAULT_LAMBDA_W
    ntk_readouts: int = DEFAULT_NTK_READOUTS
    quadruples: np.ndarray = None  # cos-net fields: (T4, 4) point indices, or None
    sextuples: np.ndarray = None  # (T6, 6), or None
    deformation: object = None  # an nf.Phi4 ([deformation]), or None

    # The fields that are keyword arguments of nf.sample / jobs.make_run (what the run
    # computes; the store's compression, the batch size and the output are the caller's).
    RUN_OPTIONS = (
        "method",
        "dtype",
        "observables",
        "save",
        "lambda_b",
        "lambda_w",
        "ntk_readouts",
        "quadruples",
        "sextuples",
        "deformation",
    )

    def run_options(self):
        """{name: value} of ``RUN_OPTIONS``: what ``sample`` passes to nf.sample."""
        return {name: getattr(self, name) for name in self.RUN_OPTIONS}

    def sample(self, **options):
        """nf.sample of this configuration (its network, inputs, n_networks, seed,
        ``run_options`` and compression); ``options``: the caller's (store, batch_size,
        threads, progress, executor, ...)."""
        from .sampling import sample  # the sampling layer does not import configs

        return sample(
            self.network,
            self.inputs,
            self.n_networks,
            self.seed,
            **self.run_options(),
            compression=self.compression,
            **options,
        )


def _check_table(name, value, allowed):
    """Every key of the table ``name`` known and of its type."""
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    for key, item in value.items():
        if key not in allowed:
            raise ConfigError(f"unknown key '{name}.{key}'; allowed: {', '.join(allowed)}")
        if isinstance(item, bool) or not isinstance(item, allowed[key]):
            raise ConfigError(wrong_type(f"{name}.{key}", allowed[key], item))


# TOML names of the Python types a key may take (for error messages).
_TOML_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def wrong_type(key, expected, item):
    """The message for the TOML key ``key`` holding ``item`` instead of one of the types
    ``expected`` (a type or a tuple of types), in TOML words."""
    expected = expected if isinstance(expected, tuple) else (expected,)
    if int in expected and float in expected:
        expected = ("a number (integer or float)",) + tuple(
            t for t in expected if t not in (int, float)
        )
    names = [t if isinstance(t, str) else _TOML_TYPE_NAMES[t] for t in expected]
    given = next((n for t, n in _TOML_TYPE_NAMES.items() if isinstance(item, t)), None)
    given = given or f"a {type(item).__name__}"  # TOML dates and times
    return f"'{key}' must be {' or '.join(names)}, got {given} ({item!r})"


def _check_types(data, schema=_SCHEMA, required=_REQUIRED, kind="mlp"):
    for table, value in data.items():
        if table not in schema:
            other = "cosnet" if kind == "mlp" else "mlp"
            other_schema = _COSNET_SCHEMA if kind == "mlp" else _SCHEMA
            hint = f" ([{table}] is for network.kind = '{other}')" if table in other_schema else ""
            of_kind = "" if kind == "mlp" else f" for network.kind = '{kind}'"
            raise ConfigError(
                f"unknown table [{table}]{of_kind}; allowed: {', '.join(schema)}{hint}"
            )
        _check_table(table, value, schema[table])
    for table, keys in required.items():
        for key in keys:
            if key not in data.get(table, {}):
                raise ConfigError(f"missing required key '{table}.{key}'")


def _kind(data):
    """network.kind, checked: "mlp" (the default) or "cosnet"."""
    network = data.get("network", {})
    if not isinstance(network, dict):
        raise ConfigError("[network] must be a table")
    kind = network.get("kind", "mlp")
    if not isinstance(kind, str):
        raise ConfigError(wrong_type("network.kind", str, kind))
    if kind not in KINDS:
        raise ConfigError(f"'network.kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


def _rows(values, key, n0, what="n_0"):
    """The numeric rows of length ``n0`` of the TOML array ``values`` (key ``key``)."""
    bad = [v for v in _leaves(values) if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise ConfigError(
            f"'{key}' must be a list of numeric rows, got {type(bad[0]).__name__} values"
        )
    try:
        x = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"'{key}' must be a list of numeric rows") from None
    except OverflowError:  # an integer beyond the float range
        raise ConfigError(f"'{key}' must be finite numbers") from None
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n0 or x.shape[0] < 1:
        raise ConfigError(f"'{key}' must have rows of length {what} = {n0}, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"'{key}' must be finite numbers")
    return x


def _inputs(table, n0):
    if "values" in table:
        if set(table) - {"values"}:
            raise ConfigError("'inputs.values' cannot be combined with n/seed/scale")
        return _rows(table["values"], "inputs.values", n0)
    n = table.get("n", 1)
    if n < 1:
        raise ConfigError(f"'inputs.n' must be >= 1, got {n}")
    seed = table.get("seed", 0)
    if seed < 0:
        raise ConfigError(f"'inputs.seed' must be >= 0, got {seed}")
    try:  # n beyond 2^64 would overflow the float size; it is refused all the same
        check_memory(
            [
                Need(
                    f"the random inputs ({n} x n_0 = {n0}, network.widths[0]; float64)",
                    8.0 * min(n, 2**64) * n0,
                )
            ],
            f"'inputs.n' = {n}",
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    try:
        scale = float(table.get("scale", 1.0))
    except OverflowError:  # an integer beyond the float range
        scale = float("inf")
    if not np.isfinite(scale):
        raise ConfigError(f"'inputs.scale' must be finite, got {table['scale']}")
    return scale * np.random.default_rng(seed).standard_normal((n, n0))


def _leaves(value):
    """The non-list items of a nested TOML array."""
    if isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def _cosnet(table):
    """The CosNet of a [network] table with kind = "cosnet" (types already checked)."""
    momenta = table.get("momenta", "propagator")
    if momenta not in _MOMENTA_KEYS:
        raise ConfigError(
            f"'network.momenta' must be one of {', '.join(_MOMENTA_KEYS)}, got {momenta!r}"
        )
    for family, keys in _MOMENTA_KEYS.items():
        for key in keys:
            if family != momenta and key in table:
                raise ConfigError(
                    f"'network.{key}' belongs to momenta = '{family}', not to "
                    f"momenta = '{momenta}' (keys of '{momenta}': "
                    f"{', '.join(_MOMENTA_KEYS[momenta])})"
                )
    common = dict(
        amplitude=table.get("amplitude", DEFAULT_AMPLITUDE),
        n_out=table.get("n_out", DEFAULT_N_OUT),
    )
    try:
        if momenta == "gaussian":
            return CosNet.gaussian_kernel(
                table["dim"],
                table["width"],
                length=table.get("length", DEFAULT_LENGTH),
                variance=table.get("variance", DEFAULT_VARIANCE),
                **common,
            )
        for key in ("mass", "cutoff"):
            if key not in table:
                raise ConfigError(f"missing required key 'network.{key}' (momenta = 'propagator')")
        return CosNet(
            table["dim"],
            table["width"],
            table["mass"],
            table["cutoff"],
            alpha=table.get("alpha", DEFAULT_ALPHA),
            **common,
        )
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"[network]: {exc}") from None


def _points(table, dim):
    """The points (B, d) of a [points] table: explicit values or a grid."""
    if "values" in table and "grid" in table:
        raise ConfigError("'points.values' and 'points.grid' exclude each other: give one")
    if "values" in table:
        return _rows(table["values"], "points.values", dim, "network.dim")
    if "grid" not in table:
        raise ConfigError(
            "[points] needs values = [[...], ...] or grid = {shape = [...], spacing = ...}"
        )
    grid = table["grid"]
    _check_table("points.grid", grid, _GRID_SCHEMA)
    if "shape" not in grid:
        raise ConfigError("missing required key 'points.grid.shape'")
    if len(grid["shape"]) != dim:
        raise ConfigError(
            f"'points.grid.shape' has {len(grid['shape'])} axes but network.dim = {dim}"
        )
    for key in ("spacing", "origin"):
        value = grid.get(key)
        if isinstance(value, list) and len(value) != dim:
            raise ConfigError(
                f"'points.grid.{key}' must be a number or have network.dim = {dim} "
                f"entries, got {len(value)}"
            )
    try:
        return grid_points(grid["shape"], grid.get("spacing", 1.0), grid.get("origin"))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"'points.grid': {exc}") from None


def _tuples(run, key, order, n_points):
    """The point-index tuples 'run.<key>' as an int64 (T, order) array, or None."""
    if key not in run:
        return None
    bad = [v for v in _leaves(run[key]) if isinstance(v, bool) or not isinstance(v, int)]
    if bad:
        raise ConfigError(
            f"'run.{key}' must be a list of rows of {order} point indices, got "
            f"{type(bad[0]).__name__} values"
        )
    try:
        tuples = check_tuples(f"'run.{key}'", run[key], order, n_points)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None
    return tuples if len(tuples) else None


def _finite(value):
    """Whether the TOML number ``value`` is a finite float (an integer beyond the float
    range is not)."""
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _input_space(net):
    """(d, its TOML key): the dimension of the space holding a deformation's box, the
    points of a cos-net (network.dim) or the inputs of an MLP (n_0 = network.widths[0])."""
    if isinstance(net, CosNet):
        return net.dim, "network.dim"
    return net.input_dim, "network.widths[0]"


def _check_quadrature_size(net, box, nodes):
    """Refuse a quadrature rule that cannot fit in memory before it is built: with nodes
    None a cos-net's rule needs at least K h_j / 4 nodes in dimension j (K the band limit
    of phi^4, h_j the half-length; ``quadrature.nodes_for_bandlimit``), an MLP's empirical
    rule at least EMPIRICAL_START_NODES, and an MLP's rule comes with the one of twice the
    nodes in every dimension, 2^d times as many, that estimates its error
    (``QuadratureRule.for_samples``)."""
    d = len(box)
    mlp = isinstance(net, Network)
    if nodes is not None:
        counts = np.broadcast_to(np.asarray(nodes, np.float64), (d,))
    elif mlp:
        counts = np.full(d, float(EMPIRICAL_START_NODES))
    else:
        k, _ = field_bandlimit(net)
        counts = [max(1.0, k * 0.5 * (hi - lo) / 4.0 - 1.0) for lo, hi in box]
    with np.errstate(over="ignore"):  # an absurd request is inf, refused below
        total = float(np.prod(counts, dtype=np.float64))
        built = total * (1.0 + np.exp2(d)) if mlp else total
    what = "given" if nodes is not None else "at least"
    estimate = f", with the 2^{d} times as many of its error estimate" if mlp else ""
    try:
        check_memory(
            [
                Need(
                    f"the quadrature nodes of [deformation] ({what} {total:.3g}{estimate})",
                    3 * 8.0 * built * (d + 1),  # points, weights, the grids
                )
            ],
            "'deformation.box' / 'deformation.nodes'",
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _zero_probe(net):
    """For ``LocalInteraction.rule``: None for a cos-net (its rule needs no probe); for an
    MLP zero outputs (1, n_L, Q) at the points, no network computed, so building the rule
    checks the box and the nodes against n_0 (and, nodes None, that the first error
    estimate is within its limit) at once; the run probes its networks for real."""
    if isinstance(net, CosNet):
        return None
    return lambda points: np.zeros((1, net.widths[-1], len(points)))


def _deformation(table, net):
    """The nf.Phi4 of a [deformation] table (types already checked) for the cos-net or
    MLP ``net``: the box in R^d of a cos-net's points or of an MLP's inputs."""
    for key in ("kind", "coupling", "box"):
        if key not in table:
            raise ConfigError(f"missing required key 'deformation.{key}'")
    if table["kind"] not in DEFORMATION_KINDS:
        raise ConfigError(
            f"'deformation.kind' must be one of {', '.join(DEFORMATION_KINDS)}, "
            f"got {table['kind']!r}"
        )
    dim, dim_key = _input_space(net)
    box = table["box"]
    leaves = list(_leaves(box))
    bad = [v for v in leaves if isinstance(v, bool) or not isinstance(v, (int, float))]
    if bad:
        raise ConfigError(
            f"'deformation.box' must be [lo, hi] or one [lo, hi] per dimension, got "
            f"{type(bad[0]).__name__} values"
        )
    if not all(_finite(v) for v in leaves):
        raise ConfigError("'deformation.box' must be finite numbers")
    nested = any(isinstance(v, list) for v in box)
    pairs = box if nested else [box]
    if (nested and len(box) != dim) or any(
        not isinstance(p, list) or len(p) != 2 or any(isinstance(v, list) for v in p) for p in pairs
    ):
        raise ConfigError(
            f"'deformation.box' must be [lo, hi] or {dim_key} = {dim} pairs "
            f"[[lo, hi], ...], got {box!r}"
        )
    nodes = table.get("nodes")
    if isinstance(nodes, list):
        if any(isinstance(v, bool) or not isinstance(v, int) for v in nodes):
            raise ConfigError("'deformation.nodes' must be an integer or a list of integers")
        if len(nodes) != dim:
            raise ConfigError(
                f"'deformation.nodes' must be an integer or have {dim_key} = {dim} "
                f"entries, got {len(nodes)}"
            )
    try:
        deformation = Phi4(table["coupling"], box, nodes)
        box = check_box(box, dim)
    except OverflowError:  # an integer beyond the float range
        raise ConfigError("'deformation.coupling' must be a finite number") from None
    except (TypeError, ValueError) as exc:
        key = str(exc).split(" ", 1)[0]
        where = f"'deformation.{key}'" if key in ("box", "coupling") else "[deformation]"
        raise ConfigError(f"{where}: {exc}") from None
    _check_quadrature_size(net, box, nodes)
    try:  # the box is valid: what the rule refuses are the nodes
        deformation.rule(net, _zero_probe(net))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"'deformation.nodes': {exc}") from None
    return deformation


def _optional_deformation(data, net):
    """The deformation of the [deformation] table for ``net``, or None without one."""
    return _deformation(data["deformation"], net) if "deformation" in data else None


def _store_options(data):
    """(out, save, compression) of the [store] table."""
    store = data.get("store", {})
    save = store.get("save", DEFAULT_SAVE)
    if isinstance(save, dict):
        try:
            save = {int(k): v for k, v in save.items()}
        except ValueError:
            raise ConfigError("'store.save' keys must be layer numbers") from None
    elif save == "none":
        save = None
    if store.get("out") == "":
        raise ConfigError("'store.out' must be a file path, got an empty string")
    compression = store.get("compression", DEFAULT_COMPRESSION)
    return store.get("out"), save, None if compression == "none" else compression


def _parse_cosnet(data):
    """RunConfig of a cos-net config (network.kind = "cosnet")."""
    _check_types(data, _COSNET_SCHEMA, _COSNET_REQUIRED, "cosnet")
    network = _cosnet(data["network"])
    if "points" not in data:
        raise ConfigError(
            "missing table [points] (values = [[...], ...] or grid = {shape = [...], ...})"
        )
    points = _points(data["points"], network.dim)
    run = data["run"]
    out, save, compression = _store_options(data)
    return RunConfig(
        network=network,
        inputs=points,
        n_networks=run["n_networks"],
        seed=run.get("seed", DEFAULT_SEED),
        method=run.get("method", DEFAULT_METHOD),
        dtype=run.get("dtype", DEFAULT_DTYPE.name),
        observables=tuple(run["observables"]) if "observables" in run else None,
        batch_size=run.get("batch_size"),
        out=out,
        save=save,
        compression=compression,
        quadruples=_tuples(run, "quadruples", 4, len(points)),
        sextuples=_tuples(run, "sextuples", 6, len(points)),
        deformation=_optional_deformation(data, network),
    )


def decode_config(text):
    """The dict of the TOML text ``text`` (ConfigError for malformed TOML)."""
    try:
        return tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of over 4300 digits
        raise ConfigError(f"malformed TOML: {exc}") from None
    except RecursionError:
        raise ConfigError("malformed TOML: arrays or tables nested too deeply") from None


def parse_config(text):
    """RunConfig from TOML text; raises ConfigError naming the offending key (and for a
    sweep, a config with a [sweep] table: ``nnft sweep`` runs those)."""
    data = decode_config(text)
    if SWEEP_TABLE in data:
        raise ConfigError(
            f"this config has a [{SWEEP_TABLE}] table: it describes a parameter sweep, not "
            "one run; run it with `nnft sweep CONFIG --out DIR` (nnft_fast.sweep.run_sweep)"
        )
    return parse_data(data)


def parse_data(data):
    """RunConfig from an already-decoded TOML dict without a [sweep] table (as
    ``parse_config``)."""
    if _kind(data) == "cosnet":
        return _parse_cosnet(data)
    _check_types(data)
    net = data["network"]
    try:
        network = Network(
            tuple(net["widths"]),
            net.get("activation", DEFAULT_ACTIVATION),
            net.get("init", DEFAULT_INIT),
            cw=net.get("cw", DEFAULT_CW),
            cb=net.get("cb", DEFAULT_CB),
            xi=net.get("xi", DEFAULT_XI),
            gamma=net.get("gamma", DEFAULT_GAMMA),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[network]: {exc}") from None
    run = data["run"]
    out, save, compression = _store_options(data)
    return RunConfig(
        network=network,
        inputs=_inputs(data.get("inputs", {}), network.input_dim),
        n_networks=run["n_networks"],
        seed=run.get("seed", DEFAULT_SEED),
        method=run.get("method", DEFAULT_METHOD),
        dtype=run.get("dtype", DEFAULT_DTYPE.name),
        observables=tuple(run.get("observables", DEFAULT_OBSERVABLES)),
        batch_size=run.get("batch_size"),
        out=out,
        save=save,
        compression=compression,
        lambda_b=run.get("lambda_b", DEFAULT_LAMBDA_B),
        lambda_w=run.get("lambda_w", DEFAULT_LAMBDA_W),
        ntk_readouts=run.get("ntk_readouts", DEFAULT_NTK_READOUTS),
        deformation=_optional_deformation(data, network),
    )


def read_config_text(path):
    """The text of the TOML file ``path`` (ConfigError when missing or not UTF-8)."""
    try:
        with open(path, "rb") as fh:
            return fh.read().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None


def load_config(path):
    """RunConfig from a TOML file."""
    return parse_config(read_config_text(path))
