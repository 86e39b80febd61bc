"""The run layer: a validated sampling job (``EnsembleRun``), the defaults of every run
option, the shared validators and the run's description in a store (``run_config``,
``run_from_config``).

Every default of a run is defined here once (``DEFAULT_*``); the drivers (``sampling``),
the store, the sharded runs (``distributed``), the TOML configurations and the CLI import
them. Network ``e`` of ``seed`` is a pure function of (seed, e): batches, threads, shards
and backends only decide which networks are computed where, never what they are.

The run computes batches through an engine built from its ``KernelArgs``: the
``cpu_engine.CpuEngine`` or, on backend "cuda", the ``gpu_engine.CudaEngine``; it checks
the memory every CPU batch needs before asking for it (``nnft_fast.memory``).
"""

import numbers

import numba
import numpy as np

from nnft_fast.kernels.cpu.codes import PARAMETER_ACTION_NONE
from nnft_fast.kernels.cpu.moments import CHUNK_NETWORKS

from .accumulators import DEFAULT_BLOCKS, MomentAccumulator, MomentLayout
from .backends import log_choice, resolve_backend
from .cpu_engine import CpuEngine
from .deformations import (
    DEFORMATION_NOT_STORABLE,
    PROBE_NETWORKS,
    PROBE_SEED,
    check_deformation,
    deformation_from_config,
)
from .deformed_accumulator import DeformedMomentAccumulator
from .ensemble import Ensemble
from .kernel_args import KernelArgs
from .memory import accumulator_need, check_memory, fits, moment_statistics_size, run_needs
from .network import DEFAULT_GAMMA, DEFAULT_XI, PROJECTABLE_INITS, Network
from .ntk import NTKAccumulator, ntk_statistics_size
from .progress import Progress, ShardProgress, notify_started

METHODS = ("auto", "dense", "projected")
OBSERVABLES = ("two_point", "four_point", "ntk")
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
COMPRESSIONS = ("lzf", "gzip", None)  # HDF5 filters of the raw datasets (None: none)
SEED_LIMIT = 2**64
NETWORK_INDEX_LIMIT = 2**63  # network indices are int64 in the kernels

DEFAULT_SEED = 0
DEFAULT_METHOD = "auto"
DEFAULT_DTYPE = np.dtype(np.float64)
DEFAULT_OBSERVABLES = ("two_point", "four_point")
DEFAULT_LAMBDA_B = 1.0  # NTK learning rates (docs/conventions.md#ntk)
DEFAULT_LAMBDA_W = 1.0
DEFAULT_NTK_READOUTS = 2  # readout neurons of the NTK, >= 2 (off-diagonal H_ij)
DEFAULT_BACKEND = "auto"
READER_BACKEND = "cpu"  # a stored run is rebuilt on the CPU to be read (no kernels run)
DEFAULT_SAVE = "default"  # raw outputs a store keeps (``resolve_save``)
DEFAULT_SAVED_NEURONS = 4  # save="default": the first min(4, n_L) neurons of layer L
DEFAULT_COMPRESSION = "lzf"
STATS_BYTES_PER_BATCH = 8 * 2**20  # under glibc's mmap threshold cap: batches reuse heap pages
CUDA_STATS_BYTES_PER_BATCH = 256 * 2**20  # GPU batches: enough blocks to fill the device


def check_int(name, value, minimum, maximum=None):
    """``value`` as an int in [minimum, maximum) (TypeError for a non-integer, bools
    included; ValueError naming ``name`` and the bound otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value >= maximum):
        bound = f"in [{minimum}, {maximum})" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_network_range(
    first_network, n_networks, minimum_networks, names=("first_network", "n_networks")
):
    """Validated (first, n) with every index first .. first+n-1 below 2^63."""
    first_name, count_name = names
    n_networks = check_int(count_name, n_networks, minimum_networks)
    first_network = check_int(first_name, first_network, 0, NETWORK_INDEX_LIMIT)
    if first_network + n_networks > NETWORK_INDEX_LIMIT:
        raise ValueError(
            f"network indices must stay below 2^63: {first_name} + {count_name} "
            f"= {first_network + n_networks}"
        )
    return first_network, n_networks


def check_progress(progress, sharded=False):
    """The progress callback a run calls: ``True`` is a default ``Progress`` on stderr
    (a ``ShardProgress`` for a ``sharded`` run), ``False`` or None none, a callable
    ``progress(done, total)`` itself; anything else is a TypeError, raised before any
    batch runs (so a bad one cannot fail after networks were committed)."""
    if isinstance(progress, (bool, np.bool_)):
        if not progress:
            return None
        return ShardProgress() if sharded else Progress()
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be True, False, None or a callable progress(done, total), got "
            f"{type(progress).__name__}"
        )
    return progress


def check_compression(compression):
    """The raw datasets' HDF5 filter, one of ``COMPRESSIONS``."""
    if not (compression is None or isinstance(compression, str)) or compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    return compression


def real_array(values, name, shape):
    """``values`` as a float64 array: TypeError for non-numeric or complex values (a float64
    copy would silently drop the imaginary parts), ValueError for a number beyond the
    float64 range; ``name`` ("inputs X") and ``shape`` ("(B, n_0)") word the messages."""
    try:
        given = np.asarray(values)
        x = None if np.iscomplexobj(given) else np.array(given, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array of shape {shape}") from None
    except OverflowError:
        raise ValueError(f"{name} hold a number beyond the float64 range") from None
    if x is None:
        raise TypeError(f"{name} must be real, got {given.dtype} values")
    return x


def validate_inputs(network, inputs):
    """X as a float64 (B, n_0) array; 1-D X is one input."""
    if not isinstance(network, Network):
        raise TypeError(f"network must be an nf.Network, got {type(network).__name__}")
    x = real_array(inputs, "inputs X", "(B, n_0)")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"inputs X must have shape (B, n_0) with B >= 1, got {x.shape}")
    if x.shape[1] != network.input_dim:
        raise ValueError(
            f"inputs X have dimension {x.shape[1]} but the network's n_0 is {network.input_dim}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs X contain non-finite values")
    return x


def haar_ntk_rank_ok(network, n_inputs, readouts):
    """Whether the projected Haar NTK is exact here: at every layer l >= 2 the backward
    vectors, (L - l + 1) r B of them, fit in the complement of the forward frame,
    max(n_{l-1}, n_l) - min(n_{l-1}, B) dimensions (kernels/cpu/ntk.py)."""
    widths, n_layers = network.widths, network.n_layers
    return all(
        (n_layers - l + 1) * readouts * n_inputs
        <= max(widths[l - 1], widths[l]) - min(widths[l - 1], n_inputs)
        for l in range(2, n_layers + 1)
    )


def resolve_method(network, method, ntk_shape=None):
    """'auto' -> 'projected' where exact (Gaussian, orthogonal; with the NTK,
    ntk_shape = (B, readouts), orthogonal needs ``haar_ntk_rank_ok``), else 'dense'."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        if network.init == "orthogonal" and ntk_shape is not None:
            return "projected" if haar_ntk_rank_ok(network, *ntk_shape) else "dense"
        return "projected" if network.init in PROJECTABLE_INITS else "dense"
    if method == "projected" and network.init not in PROJECTABLE_INITS:
        raise ValueError(
            f"method='projected' is exact only for {PROJECTABLE_INITS} weights, "
            f"not init={network.init!r}; use method='dense'"
        )
    return method


def _resolve_dtype(dtype):
    if dtype is not None and not isinstance(dtype, (str, type, np.dtype)):
        # tuples and dicts would be read by numpy as structured dtype specs
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float64 or float32, got {dtype!r}") from None
    if dt not in DTYPES:
        raise ValueError(f"dtype must be float64 or float32, got {dt}")
    return dt


def _resolve_observables(observables):
    if isinstance(observables, str):
        observables = (observables,)
    try:
        obs = tuple(observables)
    except TypeError:
        raise TypeError(
            f"observables must be a string or a sequence of names from "
            f"{OBSERVABLES}, got {type(observables).__name__}"
        ) from None
    unknown = [o for o in obs if o not in OBSERVABLES]
    if unknown:
        raise ValueError(f"unknown observables {unknown}; available: {OBSERVABLES}")
    if "two_point" not in obs:
        raise ValueError("observables must include 'two_point'")
    return obs


def resolve_save(network, save):
    """Raw-output selection -> ((layer, n_neurons), ...) with layers 1..L.

    ``save``: None (nothing), "default" (first min(DEFAULT_SAVED_NEURONS = 4, n_L) neurons
    of the last layer), or a mapping {layer: n_neurons}.
    """
    if save is None:
        return ()
    if isinstance(save, str):
        if save != DEFAULT_SAVE:
            raise ValueError(f"save must be None, 'default' or {{layer: n_neurons}}, got {save!r}")
        return ((network.n_layers, min(DEFAULT_SAVED_NEURONS, network.widths[-1])),)
    if not hasattr(save, "items"):
        raise TypeError("save must be None, 'default' or a mapping {layer: n_neurons}")
    spec = []
    for layer, count in sorted(save.items()):
        layer = check_int("save layer", layer, 1, network.n_layers + 1)
        count = check_int(f"save[{layer}] (neurons)", count, 1, network.widths[layer] + 1)
        spec.append((layer, count))
    return tuple(spec)


def validate_ntk_options(lambda_b, lambda_w, readouts):
    """(lambda_b, lambda_w, readouts) as (float, float, int): learning rates finite and
    >= 0, readouts an integer >= 2; checked whether or not the NTK is requested."""
    for name, value in (("lambda_b", lambda_b), ("lambda_w", lambda_w)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        try:
            as_float = float(value)
        except OverflowError:
            as_float = float("inf")
        if not np.isfinite(as_float) or as_float < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value}")
    return float(lambda_b), float(lambda_w), check_int("ntk_readouts", readouts, 2)


class NTKSettings:
    """Validated NTK options of a run: learning rates and readout count."""

    def __init__(self, lambda_b, lambda_w, readouts):
        self.lambda_b = lambda_b
        self.lambda_w = lambda_w
        self.readouts = readouts

    @classmethod
    def validated(cls, run, lambda_b, lambda_w, readouts):
        """Settings of ``run`` from options checked by ``validate_ntk_options``."""
        narrowest = min(run.network.widths[1:])
        readouts = check_int("ntk_readouts", readouts, 2, narrowest + 1)
        if run.dtype != np.float64:
            raise ValueError("the NTK observable is computed in float64 only; use dtype=np.float64")
        if not run.network.activation.is_builtin:
            raise ValueError(
                "the NTK observable supports the built-in activations only "
                f"(not the user activation {run.network.activation.name!r})"
            )
        if (
            run.method == "projected"
            and run.network.init == "orthogonal"
            and not haar_ntk_rank_ok(run.network, run.inputs.shape[0], readouts)
        ):
            raise ValueError(
                "the projected Haar NTK needs (L - l + 1) * ntk_readouts * B <= "
                "max(n_{l-1}, n_l) - min(n_{l-1}, B) at every layer l >= 2 "
                "(layers too narrow for this depth); use method='dense'"
            )
        return cls(lambda_b, lambda_w, readouts)


class BatchRun:
    """The batch loop shared by the runs (``EnsembleRun``, ``field_run.FieldRun``): they
    provide ``default_batch_size``, ``new_accumulator``, ``new_ntk_accumulator`` (None
    without NTK statistics) and ``compute(start, count)``."""

    def accumulate(self, first_network, n_networks, batch_size=None, progress=None):
        """(moment accumulator, NTK accumulator or None) of networks first_network, ...,
        first_network + n_networks - 1, computed in batches of ``batch_size``;
        ``progress(done, n_networks)`` after every batch (``progress.started(0,
        n_networks)`` first, where it has that method)."""
        if batch_size is None:
            batch_size = self.default_batch_size(n_networks)
        batch_size = check_int("batch_size", batch_size, 1)
        acc = self.new_accumulator()
        ntk_acc = self.new_ntk_accumulator()
        stop = first_network + n_networks
        if progress is not None:
            notify_started(progress, 0, n_networks)
        for start in range(first_network, stop, batch_size):
            count = min(batch_size, stop - start)
            stats, _, ntk_stats = self.compute(start, count)
            acc.add(stats, start)
            if ntk_acc is not None:
                ntk_acc.add(ntk_stats, start)
            if progress is not None:
                progress(start + count - first_network, n_networks)
        return acc, ntk_acc


class EnsembleRun(BatchRun):
    """A validated sampling job: computes any batch of networks of (network, X, seed).

    kind: what the run is for -- "statistics" (``compute`` and the accumulators: sample,
    stores), "preactivations" or "ntk_samples". The memory one network of that kind needs
    (with the accumulators for "statistics") is checked here, before anything is
    allocated; every batch is checked again when computed (``nnft_fast.memory``).
    ``kernel_args`` are the arguments of its kernels, built once; ``engine`` computes
    the batches on the run's backend.
    """

    def __init__(
        self,
        network,
        X,
        seed,
        *,
        method=DEFAULT_METHOD,
        dtype=DEFAULT_DTYPE,
        observables=DEFAULT_OBSERVABLES,
        save=None,
        lambda_b=DEFAULT_LAMBDA_B,
        lambda_w=DEFAULT_LAMBDA_W,
        ntk_readouts=DEFAULT_NTK_READOUTS,
        backend=DEFAULT_BACKEND,
        deformation=None,
        kind="statistics",
    ):
        self.network = network
        self.inputs = validate_inputs(network, X)
        self.seed = check_int("seed", seed, 0, SEED_LIMIT)
        self.observables = _resolve_observables(observables)
        lambda_b, lambda_w, ntk_readouts = validate_ntk_options(lambda_b, lambda_w, ntk_readouts)
        wants_ntk = "ntk" in self.observables
        self.dtype = _resolve_dtype(dtype)
        self.deformation, self.rule = check_deformation(network, deformation, self._probe)
        if self.deformation is not None:
            method = _deformed_method(self.deformation, method, wants_ntk)
        self.method = resolve_method(
            network, method, (self.inputs.shape[0], ntk_readouts) if wants_ntk else None
        )
        self.save = resolve_save(network, save)
        self.layout = MomentLayout(self.inputs.shape[0], "four_point" in self.observables)
        self.ntk = (
            NTKSettings.validated(self, lambda_b, lambda_w, ntk_readouts) if wants_ntk else None
        )
        self._checked_batches = {}
        needs = run_needs(self, 1, kind, threads=1)
        if kind == "statistics":
            needs += self._accumulator_needs()
        check_memory(needs)  # before any array is built: every size below fits in int64
        self.kernel_args = KernelArgs.build(
            network,
            self.inputs,
            self.seed,
            self.method,
            self.dtype,
            self.layout if kind == "statistics" else None,
            self.save,
            self.ntk,
            self.deformation,
            self.rule,
        )
        self._cpu_engine = CpuEngine(self.kernel_args)
        self._cuda_engine = None
        self.backend = resolve_backend(backend)
        problem = None
        if self.backend == "cuda":
            problem = self._cuda_limitation()
            if problem and backend == "cuda":
                raise ValueError(f"backend='cuda': {problem}; use backend='cpu'")
            if problem:  # "auto": the CPU runs what the GPU kernels do not cover
                self.backend = "cpu"
        if kind == "statistics":  # the other kinds always compute on the CPU
            log_choice(backend, self.backend, problem)

    @property
    def n_forward(self):
        """Inputs pushed through each network: B, plus the Q quadrature nodes of a local
        deformation."""
        return self.inputs.shape[0] + (0 if self.rule is None else len(self.rule.weights))

    def _probe(self, points):
        """The outputs (M, n_L, Q) at ``points`` of the PROBE_NETWORKS dense networks of
        PROBE_SEED that estimate a deformation's quadrature error (``nnft_fast.deformations``)."""
        probe = EnsembleRun(
            self.network,
            points,
            PROBE_SEED,
            method="dense",
            dtype=self.dtype,
            observables=("two_point",),
            kind="preactivations",
        )
        return probe.preactivations(0, PROBE_NETWORKS)[-1]

    def _cuda_limitation(self):
        """Why the CUDA kernels cannot run this job (None if they can)."""
        from .gpu_engine import MAX_INPUTS, ntk_supported

        if self.deformation is not None:
            return "deformed runs are computed on the CPU only"
        if self.dtype != np.float64:
            return "the GPU kernels compute in float64 only"
        if not self.network.activation.is_builtin:
            return (
                f"the GPU kernels support the built-in activations only (not the user "
                f"activation {self.network.activation.name!r})"
            )
        if self.inputs.shape[0] > MAX_INPUTS:
            return (
                f"the GPU kernels take at most {MAX_INPUTS} inputs, got B = {self.inputs.shape[0]}"
            )
        if self.ntk is not None and not ntk_supported(self.method, self.network.init):
            return f"no GPU NTK kernel for method={self.method!r}, init={self.network.init!r}"
        return None

    @property
    def engine(self):
        """The engine of the run's backend: the CpuEngine, or the CudaEngine (device
        copies of the kernel arguments, made on first use)."""
        if self.backend == "cpu":
            return self._cpu_engine
        if self._cuda_engine is None:
            from .gpu_engine import CudaEngine

            self._cuda_engine = CudaEngine(self.kernel_args)
        return self._cuda_engine

    def _accumulator_needs(self):
        """Memory of ``new_accumulator`` and ``new_ntk_accumulator``."""
        n_layers, nb = self.network.n_layers, self.inputs.shape[0]
        columns = moment_statistics_size(nb, self.layout.four_point)
        if self.deformation is not None:
            columns = 3 * columns + 3  # DeformedMomentAccumulator
        needs = [accumulator_need("accumulators", DEFAULT_BLOCKS, n_layers, columns)]
        if self.ntk is not None:
            needs.append(
                accumulator_need(
                    "NTK accumulators", DEFAULT_BLOCKS, n_layers, ntk_statistics_size(nb)
                )
            )
        return needs

    def _check_batch(self, count, kind):
        """Refuse (ValueError) a batch of ``count`` networks of ``kind`` (see
        ``memory.run_needs``) that would not fit in memory; checked again only for a larger
        batch or another thread count."""
        key = (kind, numba.get_num_threads())
        if count > self._checked_batches.get(key, 0):
            check_memory(run_needs(self, count, kind))
            self._checked_batches[key] = count

    def new_ntk_accumulator(self):
        """An NTKAccumulator for this run, or None without 'ntk' in the observables."""
        if self.ntk is None:
            return None
        return NTKAccumulator(
            self.network.widths,
            self.inputs.shape[0],
            self.ntk.readouts,
            self.ntk.lambda_b,
            self.ntk.lambda_w,
            DEFAULT_BLOCKS,
        )

    def new_accumulator(self):
        args = (self.network.widths, self.inputs.shape[0], self.layout.four_point)
        if self.deformation is not None:
            return DeformedMomentAccumulator(*args, self.deformation.coupling, DEFAULT_BLOCKS)
        return MomentAccumulator(*args, DEFAULT_BLOCKS)

    def default_batch_size(self, n_networks):
        """Networks per batch: statistics of about STATS_BYTES_PER_BATCH
        (CUDA_STATS_BYTES_PER_BATCH on the GPU), on the CPU at least one chunk of
        CHUNK_NETWORKS per Numba thread (so every thread has work when B is large and a
        network's statistics are big), halved on the CPU while a batch would not fit in
        the available memory."""
        per_network = self.network.n_layers * self.layout.n_stat * 8
        budget = CUDA_STATS_BYTES_PER_BATCH if self.backend == "cuda" else STATS_BYTES_PER_BATCH
        batch = budget // per_network
        if self.backend == "cpu":
            batch = max(batch, numba.get_num_threads() * CHUNK_NETWORKS)
        batch = max(1, min(n_networks, batch))
        if self.backend == "cpu":
            while batch > 1 and not fits(run_needs(self, batch, "statistics")):
                batch //= 2
        return batch

    def compute(self, start, count):
        """(stats (count, L, n_stat), raw outputs: list of (count, n_neurons, B) arrays,
        NTK statistics (count, L, n_ntk_stat) or None). On the CUDA backend the statistics
        stay on the device (``gpu_engine.DeviceStatistics``; accumulators add them there)."""
        if self.backend == "cpu":
            self._check_batch(count, "statistics")
        stats, raw, ntk_stats = self.engine.compute(start, count)
        return stats, self._split_raw(raw, count), ntk_stats

    def _split_raw(self, raw, count):
        """Flat raw rows -> list over saved layers of (count, n_neurons, B) arrays."""
        nb = self.inputs.shape[0]
        pieces, pos = [], 0
        for _, n_save in self.save:
            pieces.append(raw[:, pos : pos + n_save * nb].reshape(count, n_save, nb))
            pos += n_save * nb
        return pieces

    def ntk_samples(self, start, count):
        """Per-network NTKs: list over layers of (count, r, r, B, B) arrays (CPU)."""
        self._check_batch(count, "ntk_samples")
        return self._cpu_engine.ntk_samples(start, count)

    def preactivations(self, start, count):
        """All layers' preactivations of networks start..start+count-1: list over layers
        of (count, n_l, B) arrays (CPU)."""
        self._check_batch(count, "preactivations")
        return self._cpu_engine.preactivations(start, count)

    def ensemble(
        self,
        accumulator,
        first_network,
        n_networks,
        ntk_accumulator=None,
        *,
        backend=None,
        store_path=None,
        target_networks=None,
    ):
        """The Ensemble of networks first_network .. first_network + n_networks - 1 held
        by ``accumulator`` (and ``ntk_accumulator``); its provenance (``Ensemble``)
        defaults to this run's backend and no store; a deformed run's carries its
        quadrature rule (``Ensemble.quadrature``)."""
        ensemble = Ensemble(
            self.network,
            self.inputs,
            self.seed,
            self.method,
            self.dtype,
            accumulator,
            ((first_network, first_network + n_networks),),
            ntk_accumulator,
            backend=self.backend if backend is None else backend,
            store_path=store_path,
            target_networks=target_networks,
        )
        ensemble.quadrature = self.rule
        return ensemble


def _deformed_method(deformation, method, wants_ntk):
    """The method a deformed run may use: a parameter action needs the explicit weights
    ("auto" becomes "dense"); the NTK is not computed for deformed runs."""
    if wants_ntk:
        raise ValueError("deformed runs do not compute the NTK; leave 'ntk' out of observables")
    if deformation.parameter_code == PARAMETER_ACTION_NONE:
        return method
    if method == "projected":
        raise ValueError(
            "a parameter action acts on the explicit weights: method='projected' never draws "
            "them; use method='dense' (or 'auto')"
        )
    return "dense" if method == DEFAULT_METHOD else method


def run_config(run: EnsembleRun, n_networks, first_network):
    """JSON-able description that fully determines the results of a run (a store's
    config; the job a sharded worker rebuilds with ``run_from_config``)."""
    if not run.network.activation.is_builtin:
        raise ValueError(
            f"a run with the user activation {run.network.activation.name!r} "
            "cannot be stored or sharded (the file, or a worker, rebuilds the "
            "run from its description); use a built-in activation"
        )
    config = {
        "network": run.network.config(),
        "seed": run.seed,
        "method": run.method,
        "dtype": run.dtype.name,
        "observables": list(run.observables),
        "save": [[layer, count] for layer, count in run.save],
        "n_networks": int(n_networks),
        "first_network": int(first_network),
        "n_inputs": int(run.inputs.shape[0]),
    }
    if run.deformation is not None:
        if not run.deformation.storable:
            raise ValueError(DEFORMATION_NOT_STORABLE)
        config["deformation"] = run.deformation.config(run.network, run.rule)
    if run.ntk is not None:
        config["ntk"] = {
            "lambda_b": run.ntk.lambda_b,
            "lambda_w": run.ntk.lambda_w,
            "readouts": run.ntk.readouts,
        }
    return config


def run_from_config(config, inputs, backend=READER_BACKEND):
    """Rebuild the EnsembleRun described by a stored config (on ``backend``)."""
    net = config["network"]
    network = Network(
        tuple(net["widths"]),
        net["activation"],
        net["init"],
        cw=net["cw"],
        cb=net["cb"],
        xi=net.get("xi", DEFAULT_XI),
        gamma=net.get("gamma", DEFAULT_GAMMA),
    )
    ntk = config.get("ntk", {})
    return EnsembleRun(
        network,
        inputs,
        config["seed"],
        method=config["method"],
        dtype=config["dtype"],
        observables=tuple(config["observables"]),
        save={layer: count for layer, count in config["save"]} or None,
        lambda_b=ntk.get("lambda_b", DEFAULT_LAMBDA_B),
        lambda_w=ntk.get("lambda_w", DEFAULT_LAMBDA_W),
        ntk_readouts=ntk.get("readouts", DEFAULT_NTK_READOUTS),
        backend=backend,
        deformation=(
            deformation_from_config(config["deformation"]) if "deformation" in config else None
        ),
    )
