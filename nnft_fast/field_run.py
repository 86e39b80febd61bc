"""The run layer of cos-net fields: a validated sampling job on a point set (``FieldRun``),
the twin of ``run.EnsembleRun`` for MLPs, with the same interface towards the store, the
sharded runs and the Ensemble (docs/fields.md).

The field is the ensemble's layer 1: its statistics are those of ``run.EnsembleRun``'s
layers ([G | Q | GG], the full four-point function for B <= FULL_FOUR_POINT_MAX_POINTS)
followed by the tuple statistics of the requested quadruples and sextuples
(``nnft_fast.tuples``). Network ``e`` of ``seed`` is a pure function of (seed, e).
"""

from dataclasses import dataclass

import numba
import numpy as np
from scipy import special

from nnft_fast.kernels.cpu.codes import (
    AMPLITUDE_CODES,
    PARAMETER_ACTION_NONE,
    POTENTIAL_NONE,
    POTENTIAL_USER,
)
from nnft_fast.kernels.cpu.moments import CHUNK_NETWORKS

from .accumulators import DEFAULT_BLOCKS, MomentLayout
from .backends import log_choice, resolve_backend
from .cosnet import GL_NODES, CosNet
from .cpu_field_engine import FieldCpuEngine
from .deformations import DEFORMATION_NOT_STORABLE, check_deformation, deformation_from_config
from .deformed_accumulator import DeformedFieldAccumulator
from .field_accumulator import FieldAccumulator
from .field_ensemble import FieldEnsemble
from .memory import Need, accumulator_need, check_memory, fits
from .run import (
    DEFAULT_BACKEND,
    DEFAULT_METHOD,
    DEFAULT_SAVE,
    DEFAULT_SAVED_NEURONS,
    SEED_LIMIT,
    STATS_BYTES_PER_BATCH,
    BatchRun,
    check_int,
    real_array,
)
from .tuples import TupleLayout

FIELD_METHOD = "field"  # the one sampler of cos-nets (exact parameters, then the field)
FIELD_OBSERVABLES = ("two_point", "four_point")
FULL_FOUR_POINT_MAX_POINTS = 16  # the (B, B, B, B) four-point statistics grow as B^4 / 24


def validate_points(net, points):
    """The point set X as a float64 (B, d) array; 1-D X is one point."""
    if not isinstance(net, CosNet):
        raise TypeError(f"network must be an nf.CosNet, got {type(net).__name__}")
    x = real_array(points, "points X", "(B, d)")
    if x.ndim == 1:
        x = x[None, :] if net.dim > 1 or x.size == 1 else x[:, None]
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError(f"points X must have shape (B, d) with B >= 1, got {x.shape}")
    if x.shape[1] != net.dim:
        raise ValueError(f"points X have dimension {x.shape[1]} but the cos-net's d is {net.dim}")
    if not np.all(np.isfinite(x)):
        raise ValueError("points X contain non-finite values")
    return x


def _field_observables(observables, n_points):
    """Validated observables; None: the two- and four-point functions, the latter only up
    to FULL_FOUR_POINT_MAX_POINTS points."""
    if observables is None:
        return FIELD_OBSERVABLES if n_points <= FULL_FOUR_POINT_MAX_POINTS else ("two_point",)
    if isinstance(observables, str):
        observables = (observables,)
    try:
        obs = tuple(observables)
    except TypeError:
        raise TypeError(
            f"observables must be a string or a sequence of names from {FIELD_OBSERVABLES}"
        ) from None
    unknown = [o for o in obs if o not in FIELD_OBSERVABLES]
    if unknown:
        raise ValueError(
            f"unknown observables {unknown} for a cos-net field; available: {FIELD_OBSERVABLES}"
        )
    if "two_point" not in obs:
        raise ValueError("observables must include 'two_point'")
    if "four_point" in obs and n_points > FULL_FOUR_POINT_MAX_POINTS:
        raise ValueError(
            f"the full (B, B, B, B) four-point function is accumulated for B <= "
            f"{FULL_FOUR_POINT_MAX_POINTS} points only (got B = {n_points}); pass the index "
            "quadruples you need as quadruples= and leave 'four_point' out of observables"
        )
    return obs


def _field_save(net, save):
    """Raw outputs: None, "default" (the first min(4, n_out) outputs on every point) or
    {1: n_outputs} -> ((1, n),) or ()."""
    if save is None:
        return ()
    if isinstance(save, str):
        if save != DEFAULT_SAVE:
            raise ValueError(f"save must be None, 'default' or {{1: n_outputs}}, got {save!r}")
        return ((1, min(DEFAULT_SAVED_NEURONS, net.n_out)),)
    if not hasattr(save, "items"):
        raise TypeError("save must be None, 'default' or a mapping {1: n_outputs}")
    spec = []
    for layer, count in sorted(save.items()):
        layer = check_int("save layer", layer, 1, 2)
        count = check_int("save[1] (outputs)", count, 1, net.n_out + 1)
        spec.append((layer, count))
    return tuple(spec)


@dataclass(frozen=True, eq=False)
class FieldKernelArgs:
    """Arguments of a field run's kernels (never modify the arrays).

    seed: uint64; xt: the points X^T, (d, B) float64; field_args: (N, n_out, radial code,
    radial params, CDF table, Gauss-Legendre (2, GL_NODES) nodes and weights, amplitude
    code) as ``kernels.cpu.field`` takes them; tables: the ``MomentLayout`` tables;
    four_point: whether the moment statistics are [G | Q | GG] or [G]; tuple_tables: the
    ``TupleLayout`` CSR tables; n_stat: moment plus tuple statistics (plus the interaction
    s of a deformed run); n_save: outputs kept raw; deformation_args: (deformed, the
    quadrature nodes (d, Q), their weights, potential code, parameter-action code) as
    ``kernels.cpu.field.batch_field_statistics`` takes them; potential_fn, action_fn: a
    deformation's user functions (None: built in).
    """

    seed: np.uint64
    xt: np.ndarray
    field_args: tuple
    tables: tuple
    four_point: bool
    tuple_tables: tuple
    n_stat: int
    n_save: int
    deformation_args: tuple
    potential_fn: object = None
    action_fn: object = None

    @classmethod
    def build(cls, net, points, seed, layout, tuples, save, deformation=None, rule=None):
        """The arguments of a validated run (``layout`` None: no statistics tables, for
        fields alone; ``rule``: the deformation's quadrature rule)."""
        radial = net.radial
        gl = np.ascontiguousarray(np.stack(special.roots_legendre(GL_NODES)))
        field_args = (
            net.width,
            net.n_out,
            radial.code,
            radial.params,
            radial.table,
            gl,
            AMPLITUDE_CODES[net.amplitude],
        )
        nodes = np.zeros((net.dim, 0)) if rule is None else np.ascontiguousarray(rule.points.T)
        deformation_args = (
            deformation is not None,
            nodes,
            np.zeros(0) if rule is None else np.ascontiguousarray(rule.weights),
            POTENTIAL_NONE if deformation is None else deformation.potential_code,
            PARAMETER_ACTION_NONE if deformation is None else deformation.parameter_code,
        )
        user_potential = deformation is not None and deformation.potential_code == POTENTIAL_USER
        return cls(
            seed=np.uint64(seed),
            xt=np.ascontiguousarray(points.T),
            field_args=field_args,
            tables=layout.kernel_tables() if layout is not None else (np.zeros(0, np.int64),) * 4,
            four_point=layout is not None and layout.four_point,
            tuple_tables=tuples.kernel_tables(),
            n_stat=(layout.n_stat if layout is not None else 0)
            + tuples.n_stat
            + (deformation is not None),
            n_save=sum(count for _, count in save),
            deformation_args=deformation_args,
            potential_fn=deformation.potential if user_potential else None,
            action_fn=None if deformation is None else deformation.action,
        )

    @property
    def n_inputs(self):
        return self.xt.shape[1]

    @property
    def n_features(self):
        return self.field_args[0]

    @property
    def n_out(self):
        return self.field_args[1]

    @property
    def n_raw(self):
        """Raw outputs per network: n_save * B."""
        return self.n_save * self.n_inputs


class FieldRun(BatchRun):
    """A validated cos-net sampling job: computes any batch of networks of (net, X, seed).

    kind: "statistics" (``compute`` and the accumulators: sample, stores; their memory is
    checked here) or "preactivations" (the fields alone: no statistics tables are built,
    so any number of points works).

    The same interface as ``run.EnsembleRun`` towards the store, the sharded runs and the
    Ensemble: ``compute``, ``accumulate`` (``run.BatchRun``), ``new_accumulator``, ``ensemble``,
    ``default_batch_size``, ``config`` (``jobs.run_config``) and ``from_config``.
    """

    ntk = None  # no NTK for fields
    method = FIELD_METHOD
    dtype = np.dtype(np.float64)

    def __init__(
        self,
        net,
        X,
        seed,
        *,
        method=DEFAULT_METHOD,
        dtype=np.float64,
        observables=None,
        save=None,
        quadruples=None,
        sextuples=None,
        backend=DEFAULT_BACKEND,
        deformation=None,
        kind="statistics",
    ):
        self.network = net
        self.inputs = validate_points(net, X)
        self.seed = check_int("seed", seed, 0, SEED_LIMIT)
        if not isinstance(method, str) or method not in (DEFAULT_METHOD, FIELD_METHOD):
            raise ValueError(
                f"a cos-net has one sampler: method must be 'auto' or 'field', got {method!r}"
            )
        try:
            float64 = np.dtype(dtype) == np.float64
        except TypeError:
            float64 = False
        if not float64:
            raise ValueError(f"cos-net fields are computed in float64 only, got dtype={dtype!r}")
        nb = self.inputs.shape[0]
        self.observables = _field_observables(observables, nb)
        self.save = _field_save(net, save)
        self.layout = MomentLayout(nb, "four_point" in self.observables)
        self.tuples = TupleLayout.build(quadruples, sextuples, nb)
        self.deformation, self.rule = check_deformation(net, deformation)
        statistics = kind == "statistics"
        if statistics:
            check_memory(self._needs(1) + [self._accumulator_need()])
        self.kernel_args = FieldKernelArgs.build(
            net,
            self.inputs,
            self.seed,
            self.layout if statistics else None,
            self.tuples,
            self.save,
            self.deformation,
            self.rule,
        )
        self._cpu_engine = FieldCpuEngine(self.kernel_args)
        self._cuda_engine = None
        self.backend = resolve_backend(backend)
        problem = None
        if self.backend == "cuda":
            from .gpu_field_engine import cuda_limitation

            problem = cuda_limitation(self.kernel_args)
            if problem and backend == "cuda":
                raise ValueError(f"backend='cuda': {problem}; use backend='cpu'")
            if problem:  # "auto": the CPU runs what the GPU kernels do not cover
                self.backend = "cpu"
        if statistics:
            log_choice(backend, self.backend, problem, what="cos-net run")

    # ------------------------------------------------------------------ memory
    def _accumulator_need(self):
        columns = self.layout.n_stat + self.tuples.n_stat
        if self.deformation is not None:
            columns = 3 * columns + 3
        return accumulator_need("accumulators", DEFAULT_BLOCKS, 1, columns)

    def _needs(self, count):
        """Needs of a batch of ``count`` networks: statistics, raw outputs, and per chunk of
        networks in flight the features, the field and the tuple monomials."""
        net, nb = self.network, self.inputs.shape[0]
        n_stat = float(self.layout.n_stat + self.tuples.n_stat)
        in_flight = min(count, numba.get_num_threads())
        per_chunk = 8.0 * (
            net.width * (2 * net.dim + 3 + net.n_out) + nb * net.n_out * 2 + len(self.tuples.blocks)
        )
        return [
            Need(
                f"the statistics of {count} networks ({n_stat:,.0f} each, float64)",
                8.0 * count * n_stat,
            ),
            Need("the raw outputs of the batch", 8.0 * count * sum(n for _, n in self.save) * nb),
            Need("the features of the networks in flight", in_flight * per_chunk),
        ]

    # ------------------------------------------------------------------ engines
    @property
    def engine(self):
        """The FieldCpuEngine, or on backend "cuda" the FieldCudaEngine (made on first use)."""
        if self.backend == "cpu":
            return self._cpu_engine
        if self._cuda_engine is None:
            from .gpu_field_engine import FieldCudaEngine

            self._cuda_engine = FieldCudaEngine(self.kernel_args)
        return self._cuda_engine

    def new_accumulator(self):
        args = (self.network.widths, self.inputs.shape[0], self.layout.four_point, self.tuples)
        if self.deformation is not None:
            return DeformedFieldAccumulator(*args, self.deformation.coupling)
        return FieldAccumulator(*args)

    def new_ntk_accumulator(self):
        """None: fields have no NTK statistics."""
        return None

    def default_batch_size(self, n_networks):
        """Networks per batch: statistics of about STATS_BYTES_PER_BATCH but at least one
        chunk of CHUNK_NETWORKS per Numba thread (so every thread has work even when B is
        large), halved while a batch would not fit in the available memory."""
        per_network = 8 * (self.layout.n_stat + self.tuples.n_stat)
        busy = numba.get_num_threads() * CHUNK_NETWORKS
        batch = max(1, min(n_networks, max(STATS_BYTES_PER_BATCH // per_network, busy)))
        while batch > 1 and not fits(self._needs(batch)):
            batch //= 2
        return batch

    def compute(self, start, count):
        """(stats (count, 1, n_stat), raw outputs: [(count, n_save, B)] or [], None)."""
        if self.backend == "cpu":
            check_memory(self._needs(count))
        stats, raw, _ = self.engine.compute(start, count)
        nb = self.inputs.shape[0]
        pieces = [raw.reshape(count, n, nb) for _, n in self.save]
        return stats, pieces, None

    def preactivations(self, start, count):
        """[phi (count, n_out, B)]: the field of networks start .. start + count - 1."""
        check_memory(
            [
                Need(
                    f"the fields of {count} networks",
                    8.0 * count * self.network.n_out * self.inputs.shape[0],
                )
            ]
        )
        return [self._cpu_engine.fields(start, count)]

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
        """The FieldEnsemble of networks first_network .. first_network + n_networks - 1
        (with the deformation's quadrature rule, ``FieldEnsemble.quadrature``)."""
        ensemble = FieldEnsemble(
            self.network,
            self.inputs,
            self.seed,
            self.method,
            self.dtype,
            accumulator,
            ((first_network, first_network + n_networks),),
            None,
            backend=self.backend if backend is None else backend,
            store_path=store_path,
            target_networks=target_networks,
        )
        ensemble.quadrature = self.rule
        return ensemble

    # ------------------------------------------------------------------ description
    def config(self, n_networks, first_network):
        """JSON-able description that fully determines the run's results (a deformation
        with user functions cannot be described: such runs are not stored or sharded)."""
        if self.deformation is not None and not self.deformation.storable:
            raise ValueError(DEFORMATION_NOT_STORABLE)
        config = {
            "network": self.network.config(),
            "seed": self.seed,
            "method": self.method,
            "dtype": self.dtype.name,
            "observables": list(self.observables),
            "save": [[layer, count] for layer, count in self.save],
            "n_networks": int(n_networks),
            "first_network": int(first_network),
            "n_inputs": int(self.inputs.shape[0]),
            "quadruples": self.tuples.quadruples.tolist(),
            "sextuples": self.tuples.sextuples.tolist(),
        }
        if self.deformation is not None:
            config["deformation"] = self.deformation.config(self.network, self.rule)
        return config

    @classmethod
    def from_config(cls, config, inputs, backend):
        """The FieldRun a stored ``config`` describes (on ``backend``)."""
        return cls(
            CosNet.from_config(config["network"]),
            inputs,
            config["seed"],
            method=config["method"],
            observables=tuple(config["observables"]),
            save={layer: count for layer, count in config["save"]} or None,
            quadruples=config["quadruples"] or None,
            sextuples=config["sextuples"] or None,
            backend=backend,
            deformation=(
                deformation_from_config(config["deformation"]) if "deformation" in config else None
            ),
        )


__all__ = ["FIELD_METHOD", "FULL_FOUR_POINT_MAX_POINTS", "FieldKernelArgs", "FieldRun"]
