"""Sampling driver: validation, seeds, batching and method choice for the CPU kernels.

Network ``e`` of ``seed`` is a pure function of (seed, e): batches, threads and shards
only decide which networks are computed where, never what they are.
"""
import numbers

import numba
import numpy as np
from numba.core.errors import NumbaError

from nnft_fast.kernels.cpu import moments as cpu_moments
from nnft_fast.kernels.cpu import ntk as cpu_ntk
from nnft_fast.kernels.cpu.haar import batch_haar_matrices
from nnft_fast.kernels.cpu.specialise import kernels_for

from .accumulators import DEFAULT_BLOCKS, MomentAccumulator, MomentLayout
from .backends import resolve_backend
from .ensemble import Ensemble
from .memory import (accumulator_need, check_memory, fits, haar_needs, moment_statistics_size,
                     run_needs)
from .ntk import NTKAccumulator, ntk_statistics_size
from .network import PROJECTABLE_INITS, Network
from .threads import thread_limit

METHODS = ("auto", "dense", "projected")
OBSERVABLES = ("two_point", "four_point", "ntk")
DEFAULT_OBSERVABLES = ("two_point", "four_point")
DTYPES = (np.dtype(np.float64), np.dtype(np.float32))
_METHOD_CODES = {"dense": cpu_moments.METHOD_DENSE, "projected": cpu_moments.METHOD_PROJECTED}
_STATS_BYTES_PER_BATCH = 8 * 2 ** 20   # under glibc's mmap threshold cap: batches reuse heap pages
_CUDA_STATS_BYTES_PER_BATCH = 256 * 2 ** 20   # GPU batches: enough blocks to fill the device
_SEED_LIMIT = 2 ** 64
NETWORK_INDEX_LIMIT = 2 ** 63  # network indices are int64 in the kernels


def check_int(name, value, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value >= maximum):
        bound = f"in [{minimum}, {maximum})" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_network_range(first_network, n_networks, minimum_networks,
                        names=("first_network", "n_networks")):
    """Validated (first, n) with every index first .. first+n-1 below 2^63."""
    first_name, count_name = names
    n_networks = check_int(count_name, n_networks, minimum_networks)
    first_network = check_int(first_name, first_network, 0, NETWORK_INDEX_LIMIT)
    if first_network + n_networks > NETWORK_INDEX_LIMIT:
        raise ValueError(f"network indices must stay below 2^63: {first_name} + {count_name} "
                         f"= {first_network + n_networks}")
    return first_network, n_networks


def validate_inputs(network, inputs):
    """X as a float64 (B, n_0) array; 1-D X is one input."""
    if not isinstance(network, Network):
        raise TypeError(f"network must be an nf.Network, got {type(network).__name__}")
    try:
        given = np.asarray(inputs)
        x = None if np.iscomplexobj(given) else np.array(given, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError("inputs X must be a numeric array of shape (B, n_0)") from None
    if x is None:  # a float64 copy would silently drop the imaginary parts
        raise TypeError(f"inputs X must be real, got {given.dtype} values")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"inputs X must have shape (B, n_0) with B >= 1, got {x.shape}")
    if x.shape[1] != network.input_dim:
        raise ValueError(f"inputs X have dimension {x.shape[1]} but the network's n_0 is "
                         f"{network.input_dim}")
    if not np.all(np.isfinite(x)):
        raise ValueError("inputs X contain non-finite values")
    return x


def haar_ntk_rank_ok(network, n_inputs, readouts):
    """Whether the projected Haar NTK is exact here: at every layer l >= 2 the backward
    vectors, (L - l + 1) r B of them, fit in the complement of the forward frame,
    max(n_{l-1}, n_l) - min(n_{l-1}, B) dimensions (kernels/cpu/ntk.py)."""
    widths, n_layers = network.widths, network.n_layers
    return all((n_layers - l + 1) * readouts * n_inputs
               <= max(widths[l - 1], widths[l]) - min(widths[l - 1], n_inputs)
               for l in range(2, n_layers + 1))


def resolve_method(network, method, ntk_shape=None):
    """'auto' -> 'projected' where exact (Gaussian, orthogonal; with the NTK,
    ntk_shape = (B, readouts), orthogonal needs ``haar_ntk_rank_ok``), else 'dense'."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        if network.init == "orthogonal" and ntk_shape is not None:
            return "projected" if haar_ntk_rank_ok(network, *ntk_shape) else "dense"
        return "projected" if network.init in PROJECTABLE_INITS else "dense"
    if method == "projected" and network.init not in PROJECTABLE_INITS:
        raise ValueError(f"method='projected' is exact only for {PROJECTABLE_INITS} weights, "
                         f"not init={network.init!r}; use method='dense'")
    return method


def _resolve_dtype(dtype):
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
        raise TypeError(f"observables must be a string or a sequence of names from "
                        f"{OBSERVABLES}, got {type(observables).__name__}") from None
    unknown = [o for o in obs if o not in OBSERVABLES]
    if unknown:
        raise ValueError(f"unknown observables {unknown}; available: {OBSERVABLES}")
    if "two_point" not in obs:
        raise ValueError("observables must include 'two_point'")
    return obs


def _batch_kernels(activation):
    """(batch_statistics, batch_preactivations) for this activation."""
    if activation.is_builtin:
        return cpu_moments.batch_statistics, cpu_moments.batch_preactivations
    return kernels_for(activation.fn)


def _kernel_args(network, x):
    widths = np.array(network.widths, np.int64)
    offsets = np.concatenate([[0], np.cumsum(widths[1:] * x.shape[0])]).astype(np.int64)
    act_code = max(network.activation.code, 0)
    return (np.ascontiguousarray(x.T), widths, network.cw_array, network.cb_array,
            network.init_code, act_code), offsets


def resolve_save(network, save):
    """Raw-output selection -> ((layer, n_neurons), ...) with layers 1..L.

    ``save``: None (nothing), "default" (first min(4, n_L) neurons of the last layer), or a
    mapping {layer: n_neurons}.
    """
    if save is None:
        return ()
    if isinstance(save, str):
        if save != "default":
            raise ValueError(f"save must be None, 'default' or {{layer: n_neurons}}, got {save!r}")
        return ((network.n_layers, min(4, network.widths[-1])),)
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
        if not np.isfinite(value) or value < 0:
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
            raise ValueError("the NTK observable is computed in float64 only; use "
                             "dtype=np.float64")
        if not run.network.activation.is_builtin:
            raise ValueError("the NTK observable supports the built-in activations only "
                             f"(not the user activation {run.network.activation.name!r})")
        if (run.method == "projected" and run.network.init == "orthogonal"
                and not haar_ntk_rank_ok(run.network, run.inputs.shape[0], readouts)):
            raise ValueError("the projected Haar NTK needs (L - l + 1) * ntk_readouts * B <= "
                             "max(n_{l-1}, n_l) - min(n_{l-1}, B) at every layer l >= 2 "
                             "(layers too narrow for this depth); use method='dense'")
        return cls(lambda_b, lambda_w, readouts)


class EnsembleRun:
    """A validated sampling job: computes any batch of networks of (network, X, seed).

    kind: what the run is for -- "statistics" (``compute`` and the accumulators: sample,
    stores), "preactivations" or "ntk_samples". The memory one network of that kind needs
    (with the accumulators for "statistics") is checked here, before anything is
    allocated; every batch is checked again when computed (``nnft_fast.memory``).
    """

    def __init__(self, network, X, seed, *, method="auto", dtype=np.float64,
                 observables=DEFAULT_OBSERVABLES, save=None, lambda_b=1.0, lambda_w=1.0,
                 ntk_readouts=2, backend="auto", kind="statistics"):
        self.network = network
        self.inputs = validate_inputs(network, X)
        self.seed = check_int("seed", seed, 0, _SEED_LIMIT)
        self.observables = _resolve_observables(observables)
        lambda_b, lambda_w, ntk_readouts = validate_ntk_options(lambda_b, lambda_w,
                                                                ntk_readouts)
        wants_ntk = "ntk" in self.observables
        self.method = resolve_method(network, method,
                                     (self.inputs.shape[0], ntk_readouts) if wants_ntk else None)
        self._method_code = _METHOD_CODES[self.method]
        self.dtype = _resolve_dtype(dtype)
        self.save = resolve_save(network, save)
        self.layout = MomentLayout(self.inputs.shape[0], "four_point" in self.observables)
        self.ntk = NTKSettings.validated(self, lambda_b, lambda_w, ntk_readouts) \
            if wants_ntk else None
        self._checked_batches = {}
        needs = run_needs(self, 1, kind, threads=1)
        if kind == "statistics":
            needs += self._accumulator_needs()
        check_memory(needs)  # before any array is built: every size below fits in int64
        self._tables = self.layout.kernel_tables()
        self._args, self._offsets = _kernel_args(network, self.inputs)
        self._save_layers = np.array([l for l, _ in self.save], np.int64)
        self._save_neurons = np.array([c for _, c in self.save], np.int64)
        self._batch_statistics, self._batch_preactivations = _batch_kernels(network.activation)
        self.backend = resolve_backend(backend)
        self._engine = None
        if self.backend == "cuda":
            problem = self._cuda_limitation()
            if problem and backend == "cuda":
                raise ValueError(f"backend='cuda': {problem}; use backend='cpu'")
            if problem:  # "auto": the CPU runs what the GPU kernels do not cover
                self.backend = "cpu"

    def _cuda_limitation(self):
        """Why the CUDA kernels cannot run this job (None if they can)."""
        from .gpu_engine import MAX_INPUTS, ntk_supported
        if self.dtype != np.float64:
            return "the GPU kernels compute in float64 only"
        if not self.network.activation.is_builtin:
            return (f"the GPU kernels support the built-in activations only (not the user "
                    f"activation {self.network.activation.name!r})")
        if self.inputs.shape[0] > MAX_INPUTS:
            return (f"the GPU kernels take at most {MAX_INPUTS} inputs, got "
                    f"B = {self.inputs.shape[0]}")
        if self.ntk is not None and not ntk_supported(self.method, self.network.init):
            return f"no GPU NTK kernel for method={self.method!r}, init={self.network.init!r}"
        return None

    @property
    def engine(self):
        """The CudaEngine (device copies of the run's arrays), built on first use."""
        if self._engine is None:
            from .gpu_engine import CudaEngine
            self._engine = CudaEngine(self)
        return self._engine

    def _accumulator_needs(self):
        """Memory of ``new_accumulator`` and ``new_ntk_accumulator``."""
        n_layers, nb = self.network.n_layers, self.inputs.shape[0]
        needs = [accumulator_need("accumulators", DEFAULT_BLOCKS, n_layers,
                                  moment_statistics_size(nb, self.layout.four_point))]
        if self.ntk is not None:
            needs.append(accumulator_need("NTK accumulators", DEFAULT_BLOCKS, n_layers,
                                          ntk_statistics_size(nb)))
        return needs

    def _check_batch(self, count, kind):
        """Refuse (ValueError) a batch of ``count`` networks of ``kind`` (see
        ``memory.run_needs``) that would not fit in memory; checked again only for a larger
        batch or another thread count."""
        key = (kind, numba.get_num_threads())
        if count > self._checked_batches.get(key, 0):
            check_memory(run_needs(self, count, kind))
            self._checked_batches[key] = count

    def _run_kernel(self, kernel, *args):
        """kernel(*args), naming a user activation that fails in it: one that does not
        compile into the kernels (TypeError) or raises inside them (ValueError; Numba
        reports a SystemError whose context is the exception)."""
        name = self.network.activation.name
        try:
            kernel(*args)
        except NumbaError as exc:
            if self.network.activation.is_builtin:
                raise
            raise TypeError(f"the activation {name!r} does not compile into the kernels "
                            f"({self.dtype.name} arithmetic): {exc}") from exc
        except SystemError as exc:
            cause = exc.__context__
            if self.network.activation.is_builtin or cause is None:
                raise
            raise ValueError(f"the activation {name!r} raised {type(cause).__name__} inside "
                             f"the kernels: {cause}") from cause

    def new_ntk_accumulator(self):
        """An NTKAccumulator for this run, or None without 'ntk' in the observables."""
        if self.ntk is None:
            return None
        return NTKAccumulator(self.network.widths, self.inputs.shape[0], self.ntk.readouts,
                              self.ntk.lambda_b, self.ntk.lambda_w, DEFAULT_BLOCKS)

    def new_accumulator(self):
        return MomentAccumulator(self.network.widths, self.inputs.shape[0],
                                 self.layout.four_point, DEFAULT_BLOCKS)

    def default_batch_size(self, n_networks):
        """Networks per batch: statistics of about _STATS_BYTES_PER_BATCH
        (_CUDA_STATS_BYTES_PER_BATCH on the GPU), halved on the CPU while a batch would not
        fit in the available memory."""
        per_network = self.network.n_layers * self.layout.n_stat * 8
        budget = _CUDA_STATS_BYTES_PER_BATCH if self.backend == "cuda" else _STATS_BYTES_PER_BATCH
        batch = max(1, min(n_networks, budget // per_network))
        if self.backend == "cpu":
            while batch > 1 and not fits(run_needs(self, batch, "statistics")):
                batch //= 2
        return batch

    def compute(self, start, count):
        """(stats (count, L, n_stat), raw outputs: list of (count, n_neurons, B) arrays,
        NTK statistics (count, L, n_ntk_stat) or None). On the CUDA backend the statistics
        stay on the device (``gpu_engine.DeviceStatistics``; accumulators add them there)."""
        nb = self.inputs.shape[0]
        n_raw = int(self._save_neurons.sum()) * nb
        if self.backend == "cuda":
            n_ntk = ntk_statistics_size(nb) if self.ntk is not None else 0
            stats, raw, ntk_stats = self.engine.compute(start, count, self.layout.n_stat,
                                                        n_raw, n_ntk)
            return stats, self._split_raw(raw, count), ntk_stats
        self._check_batch(count, "statistics")
        stats = np.empty((count, self.network.n_layers, self.layout.n_stat))
        raw = np.empty((count, n_raw), self.dtype)
        xt, widths, cw, cb, init_code, act_code = self._args
        method_code = self._method_code
        ntk_stats = None
        if self.ntk is None:
            self._run_kernel(self._batch_statistics, method_code, np.int64(start), count,
                             np.uint64(self.seed), xt, widths, cw, cb, init_code, act_code,
                             *self._tables, self.layout.four_point, stats, self._save_layers,
                             self._save_neurons, raw)
        else:
            ntk_stats = np.empty((count, self.network.n_layers, ntk_statistics_size(nb)))
            cpu_ntk.batch_ntk_statistics(
                method_code, np.int64(start), count, np.uint64(self.seed), xt, widths, cw, cb,
                init_code, act_code, self.ntk.lambda_b, self.ntk.lambda_w, self._offsets,
                *self._tables, self.layout.four_point, stats, ntk_stats, self.ntk.readouts,
                self._save_layers, self._save_neurons, raw)
        return stats, self._split_raw(raw, count), ntk_stats

    def _split_raw(self, raw, count):
        """Flat raw rows -> list over saved layers of (count, n_neurons, B) arrays."""
        nb = self.inputs.shape[0]
        pieces, pos = [], 0
        for _, n_save in self.save:
            pieces.append(raw[:, pos:pos + n_save * nb].reshape(count, n_save, nb))
            pos += n_save * nb
        return pieces

    def ntk_samples(self, start, count):
        """Per-network NTKs: list over layers of (count, r, r, B, B) arrays."""
        nb = self.inputs.shape[0]
        r = self.ntk.readouts
        self._check_batch(count, "ntk_samples")
        out = np.empty((count, self.network.n_layers, r, r, nb, nb))
        xt, widths, cw, cb, init_code, act_code = self._args
        cpu_ntk.batch_ntk(self._method_code, np.int64(start), count,
                          np.uint64(self.seed), xt, widths, cw, cb, init_code, act_code,
                          self.ntk.lambda_b, self.ntk.lambda_w, self._offsets, out)
        return [np.ascontiguousarray(out[:, l]) for l in range(self.network.n_layers)]

    def preactivations(self, start, count):
        """All layers' preactivations of networks start..start+count-1: list over layers
        of (count, n_l, B) arrays."""
        nb = self.inputs.shape[0]
        self._check_batch(count, "preactivations")
        out = np.empty((count, self._offsets[-1]), self.dtype)
        xt, widths, cw, cb, init_code, act_code = self._args
        self._run_kernel(self._batch_preactivations, self._method_code, np.int64(start),
                         count, np.uint64(self.seed), xt, widths, cw, cb, init_code,
                         act_code, self._offsets, out)
        # The kernels write each layer input-major (B x n_l); hand out (count, n_l, B).
        return [np.ascontiguousarray(
                    out[:, self._offsets[l]:self._offsets[l + 1]].reshape(count, nb, n)
                    .transpose(0, 2, 1))
                for l, n in enumerate(self.network.widths[1:])]

    def accumulate(self, first_network, n_networks, batch_size=None, progress=None):
        """(moment accumulator, NTK accumulator or None) of networks first_network, ...,
        first_network + n_networks - 1, computed in batches of ``batch_size``;
        ``progress(done, n_networks)`` after every batch."""
        if batch_size is None:
            batch_size = self.default_batch_size(n_networks)
        batch_size = check_int("batch_size", batch_size, 1)
        acc = self.new_accumulator()
        ntk_acc = self.new_ntk_accumulator()
        stop = first_network + n_networks
        for start in range(first_network, stop, batch_size):
            count = min(batch_size, stop - start)
            stats, _, ntk_stats = self.compute(start, count)
            acc.add(stats, start)
            if ntk_acc is not None:
                ntk_acc.add(ntk_stats, start)
            if progress is not None:
                progress(start + count - first_network, n_networks)
        return acc, ntk_acc

    def ensemble(self, accumulator, first_network, n_networks, ntk_accumulator=None):
        ens = Ensemble(self.network, self.inputs, self.seed, self.method, self.dtype,
                       accumulator, ((first_network, first_network + n_networks),),
                       ntk_accumulator)
        ens.backend = self.backend
        return ens


def sample(network, X, n_networks, seed=0, *, method="auto", batch_size=None,
           dtype=np.float64, observables=DEFAULT_OBSERVABLES, threads=None, first_network=0,
           store=None, save="default", overwrite=False, compression="lzf", progress=None,
           lambda_b=1.0, lambda_w=1.0, ntk_readouts=2, backend="auto", executor=None,
           shard_size=None):
    """Draw networks first_network, ..., first_network + n_networks - 1 of ``seed``,
    push the inputs X (B x n_0) through each, and accumulate per-layer correlators.

    method: "projected" (exact low-rank sampler, Gaussian/orthogonal), "dense"
    (explicit weights, any law) or "auto". dtype: forward arithmetic (float64 or
    float32); accumulation is always float64. observables: "two_point" (always),
    "four_point", "ntk". With "ntk": the NTK of the first ``ntk_readouts`` neurons of every
    layer with learning rates (lambda_b, lambda_w), DESIGN.md §2 (float64 only).
    Returns an ``nf.Ensemble``.

    backend: "cpu", "cuda" (numba.cuda kernels; float64, built-in activations, B <= 8; a
    missing GPU is an error) or "auto" (default: the GPU when Numba sees one and its kernels
    cover the job, else the CPU); the networks are the same on every backend and
    ``Ensemble.backend`` (and the store's provenance) says which one ran.

    executor: any ``concurrent.futures.Executor``
    (``dask.distributed.Client(address).get_executor()``, ``mpi4py.futures.MPIPoolExecutor()``):
    the ensemble is cut into shards of ``shard_size`` consecutive networks, run on the
    executor's workers (each on its own ``backend`` choice) and merged in shard order
    (``nnft_fast.distributed`` says what is bit-identical).

    store: path of a new HDF5 file to stream into (see ``nnft_fast.store``), with raw
    outputs selected by ``save`` (None, "default" = first 4 neurons of the last layer,
    or {layer: n_neurons}); ``progress(done, total)`` is called after every batch.
    """
    run = EnsembleRun(network, X, seed, method=method, dtype=dtype, observables=observables,
                      save=save if store is not None else None, lambda_b=lambda_b,
                      lambda_w=lambda_w, ntk_readouts=ntk_readouts, backend=backend)
    first_network, n_networks = check_network_range(first_network, n_networks, 2)
    if executor is not None:
        from .distributed import sample_sharded
        return sample_sharded(run, n_networks, executor, first_network=first_network,
                              shard_size=shard_size, store=store, overwrite=overwrite,
                              compression=compression, threads=threads, progress=progress,
                              batch_size=batch_size, backend=backend)
    if shard_size is not None:
        raise ValueError("shard_size needs executor= (a concurrent.futures.Executor)")
    if store is not None:
        from .store import sample_to_store
        return sample_to_store(run, n_networks, store, first_network=first_network,
                               batch_size=batch_size, threads=threads, overwrite=overwrite,
                               compression=compression, progress=progress)
    with thread_limit(threads):
        acc, ntk_acc = run.accumulate(first_network, n_networks, batch_size, progress)
    return run.ensemble(acc, first_network, n_networks, ntk_acc)


def ntk_samples(network, X, n_networks, seed=0, *, method="auto", lambda_b=1.0,
                lambda_w=1.0, readouts=2, threads=None, first_network=0):
    """Per-network NTKs H^(l)_{i1 i2; a1 a2} of the readout neurons i < ``readouts`` of
    every layer (DESIGN.md §2): list over layers l = 1..L of (n_networks, r, r, B, B)
    arrays, for the very networks ``sample`` and ``preactivations`` draw."""
    run = EnsembleRun(network, X, seed, method=method, observables=("two_point", "ntk"),
                      lambda_b=lambda_b, lambda_w=lambda_w, ntk_readouts=readouts,
                      kind="ntk_samples")
    first_network, n_networks = check_network_range(first_network, n_networks, 1)
    with thread_limit(threads):
        return run.ntk_samples(first_network, n_networks)


def preactivations(network, X, n_networks, seed=0, *, method="auto", dtype=np.float64,
                   threads=None, first_network=0):
    """Raw preactivations of networks first_network, ..., as a list over layers
    l = 1..L of arrays (n_networks, n_l, B): the very samples ``sample`` accumulates."""
    run = EnsembleRun(network, X, seed, method=method, dtype=dtype,
                      observables=("two_point",), kind="preactivations")
    first_network, n_networks = check_network_range(first_network, n_networks, 1)
    with thread_limit(threads):
        return run.preactivations(first_network, n_networks)


def haar_orthogonal(n_rows, n_cols, size, seed=0, *, first=0):
    """``size`` Haar-random matrices (size, n_rows, n_cols), reproducible by (seed, index).

    Orthonormal columns when n_rows >= n_cols, orthonormal rows otherwise; Q of a Gaussian
    QR with Mezzadri's sign correction (diag R > 0).
    """
    n_rows = check_int("n_rows", n_rows, 1)
    n_cols = check_int("n_cols", n_cols, 1)
    seed = check_int("seed", seed, 0, _SEED_LIMIT)
    first, size = check_network_range(first, size, 1, names=("first", "size"))
    check_memory(haar_needs(n_rows, n_cols, size), "haar_orthogonal")
    out = np.empty((size, n_rows, n_cols))
    batch_haar_matrices(np.uint64(seed), np.int64(first), np.uint64(0), out)
    return out
