"""The arguments of a run's kernels, built once and shared by the twin engines.

``KernelArgs`` holds everything the batch kernels of ``kernels/cpu`` and ``kernels/cuda``
take besides the batch itself (its first network, its size and the output arrays): the
seed, the inputs, the architecture, the integer codes of ``kernels.cpu.codes``, the
statistics tables, the raw-output selection and the NTK settings. ``EnsembleRun`` builds
it once from its validated settings; ``cpu_engine.CpuEngine`` and
``gpu_engine.CudaEngine`` are built from it alone.
"""

from dataclasses import dataclass

import numpy as np

from nnft_fast.kernels.cpu.codes import (
    METHOD_CODES,
    PARAMETER_ACTION_NONE,
    POTENTIAL_NONE,
    POTENTIAL_USER,
)

from .activations import Activation
from .ntk import ntk_statistics_size


@dataclass(frozen=True, eq=False)
class KernelArgs:
    """Kernel arguments of one run (the arrays are the kernels' own: never modify them).

    seed: the run's seed as the kernels take it; xt: the inputs X^T, (n_0, B) float64,
    C-contiguous; widths: (n_0, ..., n_L) int64; cw, cb: the weight and bias variances
    C_W, C_b per layer, (L,) float64; init_code, act_code, method_code: the codes of
    ``kernels.cpu.codes`` (act_code 0 for a user activation: the CPU kernels are then
    specialised to ``activation``); tables: (pair_a, pair_b, quad_p1, quad_p2) int64 of
    the run's ``MomentLayout``; four_point: whether the statistics are [G | Q | GG] or
    [G] alone; n_stat: their length; offsets: (L + 1,) int64, layer l's B n_l
    preactivations of one network start at offsets[l - 1] of its flat row; save_layers,
    save_neurons: the raw outputs kept, the first save_neurons[k] neurons of layer
    save_layers[k]; dtype: the forward arithmetic; ntk: the run's NTK settings
    (lambda_b, lambda_w, readouts) or None without the NTK; xi, gamma: the residual
    coefficients per layer, (L,) float64 (0 and 1 where a layer has no residual
    connection; the forward kernels take them after their other arguments).
    """

    seed: np.uint64
    xt: np.ndarray
    widths: np.ndarray
    cw: np.ndarray
    cb: np.ndarray
    init_code: int
    act_code: int
    method_code: int
    tables: tuple
    four_point: bool
    n_stat: int
    offsets: np.ndarray
    save_layers: np.ndarray
    save_neurons: np.ndarray
    dtype: np.dtype
    activation: Activation
    ntk: object = None
    forward_xt: np.ndarray = None
    deformation_args: tuple = (False, np.zeros(0), POTENTIAL_NONE, PARAMETER_ACTION_NONE)
    potential_fn: object = None
    action_fn: object = None
    xi: np.ndarray = None
    gamma: np.ndarray = None

    @classmethod
    def build(
        cls, network, inputs, seed, method, dtype, layout, save, ntk, deformation=None, rule=None
    ):
        """The arguments of a validated run: ``network``, inputs (B, n_0) float64,
        ``seed``, method "dense" or "projected", ``dtype``, its ``MomentLayout``, raw
        selection ((layer, n_neurons), ...), NTK settings (or None), and its deformation
        with the deformation's quadrature rule (or None). ``layout`` None: no statistics
        tables (runs that only draw preactivations or NTKs, on any number of inputs)."""
        widths = np.array(network.widths, np.int64)
        offsets = np.concatenate([[0], np.cumsum(widths[1:] * inputs.shape[0])]).astype(np.int64)
        xt = np.ascontiguousarray(inputs.T)
        deformed = deformation is not None
        nodes = rule.points if rule is not None else np.zeros((0, inputs.shape[1]))
        user_potential = deformed and deformation.potential_code == POTENTIAL_USER
        return cls(
            seed=np.uint64(seed),
            xt=xt,
            widths=widths,
            cw=network.cw_array,
            cb=network.cb_array,
            init_code=network.init_code,
            act_code=max(network.activation.code, 0),
            method_code=METHOD_CODES[method],
            tables=layout.kernel_tables() if layout is not None else (np.zeros(0, np.int64),) * 4,
            four_point=layout is not None and layout.four_point,
            n_stat=(layout.n_stat if layout is not None else 0) + deformed,
            offsets=offsets,
            save_layers=np.array([layer for layer, _ in save], np.int64),
            save_neurons=np.array([count for _, count in save], np.int64),
            dtype=np.dtype(dtype),
            activation=network.activation,
            ntk=ntk,
            forward_xt=np.ascontiguousarray(np.concatenate([inputs, nodes]).T) if deformed else xt,
            deformation_args=(
                deformed,
                np.ascontiguousarray(rule.weights) if rule is not None else np.zeros(0),
                deformation.potential_code if deformed else POTENTIAL_NONE,
                deformation.parameter_code if deformed else PARAMETER_ACTION_NONE,
            ),
            potential_fn=deformation.potential if user_potential else None,
            action_fn=deformation.action if deformed else None,
            xi=network.xi_array,
            gamma=network.gamma_array,
        )

    @property
    def network_args(self):
        """(xt, widths, cw, cb, init_code, act_code): the network as every batch kernel
        takes it, after (method_code, first network, count, seed)."""
        return self.xt, self.widths, self.cw, self.cb, self.init_code, self.act_code

    @property
    def n_inputs(self):
        """B, the number of inputs."""
        return self.xt.shape[1]

    @property
    def n_layers(self):
        """L, the number of layers with weights."""
        return self.widths.size - 1

    @property
    def n_raw(self):
        """Raw outputs per network: sum of save_neurons times B."""
        return int(self.save_neurons.sum()) * self.n_inputs

    @property
    def n_ntk_stat(self):
        """Length of the per-network NTK statistics of a layer (0 without the NTK)."""
        return ntk_statistics_size(self.n_inputs) if self.ntk is not None else 0
