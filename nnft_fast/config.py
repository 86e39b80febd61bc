"""TOML run configurations for ``nnft run``: parsing and validation.

Format (every table and key is checked; unknown keys and wrong types name the key)::

    [network]
    widths = [64, 512, 512]     # n_0, ..., n_L
    activation = "relu"
    init = "gaussian"           # gaussian | orthogonal | uniform
    cw = 2.0                    # number or one per layer
    cb = 0.0

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
"""

import tomllib
from dataclasses import dataclass

import numpy as np

from .memory import Need, check_memory
from .network import DEFAULT_ACTIVATION, DEFAULT_CB, DEFAULT_CW, DEFAULT_INIT, Network
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

_SCHEMA = {
    "network": {
        "widths": list,
        "activation": str,
        "init": str,
        "cw": (int, float, list),
        "cb": (int, float, list),
    },
    "inputs": {"values": list, "n": int, "seed": int, "scale": (int, float)},
    "run": {
        "n_networks": int,
        "seed": int,
        "method": str,
        "dtype": str,
        "observables": list,
        "batch_size": int,
        "lambda_b": (int, float),
        "lambda_w": (int, float),
        "ntk_readouts": int,
    },
    "store": {"out": str, "save": (str, dict), "compression": str},
}
_REQUIRED = {"network": ("widths",), "run": ("n_networks",)}


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


def _check_types(data):
    for table, value in data.items():
        if table not in _SCHEMA:
            raise ConfigError(f"unknown table [{table}]; allowed: {', '.join(_SCHEMA)}")
        if not isinstance(value, dict):
            raise ConfigError(f"[{table}] must be a table")
        for key, item in value.items():
            allowed = _SCHEMA[table]
            if key not in allowed:
                raise ConfigError(f"unknown key '{table}.{key}'; allowed: {', '.join(allowed)}")
            if isinstance(item, bool) or not isinstance(item, allowed[key]):
                raise ConfigError(f"'{table}.{key}' has the wrong type ({type(item).__name__})")
    for table, keys in _REQUIRED.items():
        for key in keys:
            if key not in data.get(table, {}):
                raise ConfigError(f"missing required key '{table}.{key}'")


def _inputs(table, n0):
    if "values" in table:
        if set(table) - {"values"}:
            raise ConfigError("'inputs.values' cannot be combined with n/seed/scale")
        bad = [
            v
            for v in _leaves(table["values"])
            if isinstance(v, bool) or not isinstance(v, (int, float))
        ]
        if bad:
            raise ConfigError(
                "'inputs.values' must be a list of numeric rows, got "
                f"{type(bad[0]).__name__} values"
            )
        try:
            x = np.array(table["values"], dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError("'inputs.values' must be a list of numeric rows") from None
        except OverflowError:  # an integer beyond the float range
            raise ConfigError("'inputs.values' must be finite numbers") from None
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[1] != n0:
            raise ConfigError(
                f"'inputs.values' must have rows of length n_0 = {n0}, got shape {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ConfigError("'inputs.values' must be finite numbers")
        return x
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


def parse_config(text):
    """RunConfig from TOML text; raises ConfigError naming the offending key."""
    try:
        data = tomllib.loads(text)
    except ValueError as exc:  # TOMLDecodeError, or an integer of over 4300 digits
        raise ConfigError(f"malformed TOML: {exc}") from None
    except RecursionError:
        raise ConfigError("malformed TOML: arrays or tables nested too deeply") from None
    _check_types(data)
    net = data["network"]
    try:
        network = Network(
            tuple(net["widths"]),
            net.get("activation", DEFAULT_ACTIVATION),
            net.get("init", DEFAULT_INIT),
            cw=net.get("cw", DEFAULT_CW),
            cb=net.get("cb", DEFAULT_CB),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[network]: {exc}") from None
    run = data["run"]
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
    return RunConfig(
        network=network,
        inputs=_inputs(data.get("inputs", {}), network.input_dim),
        n_networks=run["n_networks"],
        seed=run.get("seed", DEFAULT_SEED),
        method=run.get("method", DEFAULT_METHOD),
        dtype=run.get("dtype", DEFAULT_DTYPE.name),
        observables=tuple(run.get("observables", DEFAULT_OBSERVABLES)),
        batch_size=run.get("batch_size"),
        out=store.get("out"),
        save=save,
        compression=None if compression == "none" else compression,
        lambda_b=run.get("lambda_b", DEFAULT_LAMBDA_B),
        lambda_w=run.get("lambda_w", DEFAULT_LAMBDA_W),
        ntk_readouts=run.get("ntk_readouts", DEFAULT_NTK_READOUTS),
    )


def load_config(path):
    """RunConfig from a TOML file."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    return parse_config(text)
