"""Host side of the CPU backend for cos-net fields: batch launches of ``kernels/cpu/field``.

The twin of ``gpu_field_engine.FieldCudaEngine``: built from the run's ``FieldKernelArgs``
alone, with the same ``compute(start, count)``; it also draws the per-network fields
(``fields``) and parameters (``features``).
"""

import numpy as np

from nnft_fast.kernels.cpu import field as cpu_field
from nnft_fast.kernels.cpu.specialise import deformation_kernels_for


class FieldCpuEngine:
    """Launches the CPU field kernels for batches of one run, from its ``FieldKernelArgs``."""

    def __init__(self, args):
        self.args = args
        self._stats = np.empty((0, 1, args.n_stat))
        self._statistics_kernel = cpu_field.batch_field_statistics
        if args.potential_fn is not None or args.action_fn is not None:
            self._statistics_kernel = deformation_kernels_for(args.potential_fn, args.action_fn)

    def compute(self, start, count):
        """(stats (count, 1, n_stat), raw (count, n_raw) float64, None) of networks start ..
        start + count - 1 (no NTK for fields). The statistics live in a buffer the engine
        reuses (valid until its next ``compute``): with B in the hundreds a batch holds
        many MB, and fresh pages would cost more than the pair products themselves."""
        a = self.args
        if self._stats.shape[0] < count:
            self._stats = np.empty((count, 1, a.n_stat))
        stats = self._stats[:count]
        raw = np.empty((count, a.n_raw))
        self._statistics_kernel(
            np.int64(start),
            count,
            a.seed,
            a.xt,
            *a.field_args,
            *a.tables,
            a.four_point,
            *a.tuple_tables,
            stats,
            a.n_save,
            raw,
            *a.deformation_args,
        )
        return stats, raw, None

    def fields(self, start, count):
        """phi of networks start .. start + count - 1: (count, n_out, B)."""
        a = self.args
        out = np.empty((count, a.n_out, a.n_inputs))
        cpu_field.batch_fields(
            np.int64(start), count, a.seed, a.xt, *a.field_args[:1], *a.field_args[2:], out
        )
        return out

    def features(self, start, count):
        """(omega (count, d, N) = w / 2 pi, beta (count, N) = b / 2 pi, amp (count, n_out,
        N)) of networks start .. start + count - 1."""
        a = self.args
        n = a.n_features
        omega = np.empty((count, a.xt.shape[0], n))
        beta = np.empty((count, n))
        amp = np.empty((count, a.n_out, n))
        cpu_field.batch_features(
            np.int64(start), count, a.seed, a.xt.shape[0], *a.field_args[2:], omega, beta, amp
        )
        return omega, beta, amp
