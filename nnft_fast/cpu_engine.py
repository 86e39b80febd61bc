"""Host side of the CPU backend: batch launches of the ``kernels/cpu`` (@njit, prange)
kernels for one run.

The twin of ``gpu_engine.CudaEngine``: built from the run's ``KernelArgs`` alone, with the
same ``compute(start, count)`` (per-network statistics, raw outputs and NTK statistics of
a range of networks). It also draws the per-network preactivations and NTKs
(``preactivations``, ``ntk_samples``), which only the CPU kernels produce. Memory is the
run's concern: ``EnsembleRun`` checks every batch before it asks for one.
"""

import numpy as np
from numba.core.errors import NumbaError

from nnft_fast.kernels.cpu import moments as cpu_moments
from nnft_fast.kernels.cpu import ntk as cpu_ntk
from nnft_fast.kernels.cpu.specialise import kernels_for


def _batch_kernels(args):
    """(batch_statistics, batch_preactivations) for the run's activation and deformation
    functions."""
    user_activation = None if args.activation.is_builtin else args.activation.fn
    if user_activation is None and args.potential_fn is None and args.action_fn is None:
        return cpu_moments.batch_statistics, cpu_moments.batch_preactivations
    return kernels_for(user_activation, args.potential_fn, args.action_fn)


class CpuEngine:
    """Launches the CPU kernels for batches of one run, from its ``KernelArgs``."""

    def __init__(self, args):
        self.args = args
        self._batch_statistics, self._batch_preactivations = _batch_kernels(args)

    def _run_kernel(self, kernel, *args):
        """kernel(*args), naming a user activation that fails in it: one that does not
        compile into the kernels (TypeError) or raises inside them (ValueError; Numba
        reports a SystemError whose context is the exception)."""
        activation = self.args.activation
        try:
            kernel(*args)
        except NumbaError as exc:
            if activation.is_builtin:
                raise
            raise TypeError(
                f"the activation {activation.name!r} does not compile into the "
                f"kernels ({self.args.dtype.name} arithmetic): {exc}"
            ) from exc
        except SystemError as exc:
            cause = exc.__context__
            if activation.is_builtin or cause is None:
                raise
            raise ValueError(
                f"the activation {activation.name!r} raised "
                f"{type(cause).__name__} inside the kernels: {cause}"
            ) from cause

    def compute(self, start, count):
        """(stats (count, L, n_stat), raw (count, n_raw) in the forward dtype, NTK
        statistics (count, L, n_ntk_stat) or None) of networks start .. start + count - 1."""
        a = self.args
        stats = np.empty((count, a.n_layers, a.n_stat))
        raw = np.empty((count, a.n_raw), a.dtype)
        if a.ntk is None:
            self._run_kernel(
                self._batch_statistics,
                a.method_code,
                np.int64(start),
                count,
                a.seed,
                a.forward_xt,
                *a.network_args[1:],
                *a.tables,
                a.four_point,
                stats,
                a.save_layers,
                a.save_neurons,
                raw,
                *a.deformation_args,
                a.xi,
                a.gamma,
            )
            return stats, raw, None
        ntk_stats = np.empty((count, a.n_layers, a.n_ntk_stat))
        cpu_ntk.batch_ntk_statistics(
            a.method_code,
            np.int64(start),
            count,
            a.seed,
            *a.network_args,
            a.ntk.lambda_b,
            a.ntk.lambda_w,
            a.offsets,
            *a.tables,
            a.four_point,
            stats,
            ntk_stats,
            a.ntk.readouts,
            a.save_layers,
            a.save_neurons,
            raw,
            a.xi,
            a.gamma,
        )
        return stats, raw, ntk_stats

    def ntk_samples(self, start, count):
        """Per-network NTKs of networks start .. start + count - 1: list over layers of
        (count, r, r, B, B) arrays (r = the NTK's readouts)."""
        a = self.args
        r = a.ntk.readouts
        out = np.empty((count, a.n_layers, r, r, a.n_inputs, a.n_inputs))
        cpu_ntk.batch_ntk(
            a.method_code,
            np.int64(start),
            count,
            a.seed,
            *a.network_args,
            a.ntk.lambda_b,
            a.ntk.lambda_w,
            a.offsets,
            out,
            a.xi,
            a.gamma,
        )
        return [np.ascontiguousarray(out[:, l]) for l in range(a.n_layers)]

    def preactivations(self, start, count):
        """All layers' preactivations of networks start .. start + count - 1: list over
        layers of (count, n_l, B) arrays."""
        a = self.args
        nb = a.n_inputs
        out = np.empty((count, a.offsets[-1]), a.dtype)
        self._run_kernel(
            self._batch_preactivations,
            a.method_code,
            np.int64(start),
            count,
            a.seed,
            *a.network_args,
            a.offsets,
            out,
            a.xi,
            a.gamma,
        )
        # The kernels write each layer input-major (B x n_l); hand out (count, n_l, B).
        return [
            np.ascontiguousarray(
                out[:, a.offsets[l] : a.offsets[l + 1]].reshape(count, nb, n).transpose(0, 2, 1)
            )
            for l, n in enumerate(a.widths[1:])
        ]
