"""Host side of the CUDA backend for cos-net fields: device copies of a field run's
constant arrays and batch launches of ``kernels/cuda/field``.

``FieldCudaEngine`` is the twin of ``cpu_field_engine.FieldCpuEngine``: built from the
run's ``FieldKernelArgs`` alone, with the same ``compute(start, count)``, ``fields`` and
``features``. A batch's statistics stay on the GPU (``gpu_engine.DeviceStatistics``: the
accumulators add them there in the CPU's order); networks are launched one thread block
each, with at most ``gpu_engine.WORK_BYTES`` of scratch at a time.

A deformed run with a built-in potential (``nf.Phi4``) computes each network's
interaction s on the GPU too (``kernels/cuda/deformation.py``) and returns the batch's
statistics [x | s] on the host, as the CPU engine does: the deformed accumulator adds
them there (``deformed_accumulator.DeformedSums``: log-sum-exp shifts in index order).
User potentials and parameter actions run on the CPU only (``cuda_limitation``).
"""

import numpy as np
from numba import cuda

from nnft_fast.kernels.cpu.codes import PARAMETER_ACTION_NONE, POTENTIAL_USER
from nnft_fast.kernels.cuda import field as gpu_field
from nnft_fast.kernels.cuda.block import THREADS

from .gpu_engine import WORK_BYTES, DeviceStatistics


def cuda_limitation(args):
    """Why the CUDA field kernels cannot run the run of ``args`` (a ``FieldKernelArgs``),
    or None if they can: they evaluate the built-in potentials by code, while a user
    potential or parameter action is a Python @njit function the CPU kernels compile."""
    _, _, _, pot_code, par_code = args.deformation_args
    if pot_code == POTENTIAL_USER:
        return (
            "a user potential (nf.LocalInteraction with an @njit V) is evaluated on the CPU "
            "only; the GPU kernels have the built-in potentials (nf.Phi4)"
        )
    if par_code != PARAMETER_ACTION_NONE:
        return "a parameter action (nf.ParameterInteraction) is evaluated on the CPU only"
    return None


class FieldCudaEngine:
    """Launches the CUDA field kernels for batches of one run, from its ``FieldKernelArgs``."""

    def __init__(self, args):
        problem = cuda_limitation(args)
        if problem is not None:
            raise ValueError(f"FieldCudaEngine: {problem}")
        self.args = args
        n, n_out, code, params, table, gl, amp_code = args.field_args
        self.xt = cuda.to_device(args.xt)
        self.n_features, self.n_out = np.int64(n), np.int64(n_out)
        # (code, params, table, gl, amplitude code): the radial sampler, on the device
        self.radial = (
            np.int64(code),
            cuda.to_device(np.ascontiguousarray(params, np.float64)),
            cuda.to_device(np.ascontiguousarray(table, np.float64)),
            cuda.to_device(np.ascontiguousarray(gl, np.float64)),
            np.int64(amp_code),
        )
        self.tables = tuple(cuda.to_device(t) for t in args.tables)
        self.tuple_tables = tuple(cuda.to_device(t) for t in args.tuple_tables)
        deformed, nodes, weights, pot_code, _ = args.deformation_args
        self.deformed = bool(deformed)
        # (deformed, nodes (d, Q), weights (Q,), potential code): the interaction s
        self.deformation = (
            self.deformed,
            cuda.to_device(np.ascontiguousarray(nodes, np.float64)),
            cuda.to_device(np.ascontiguousarray(weights, np.float64)),
            np.int64(pot_code),
        )
        dim, nb = args.xt.shape
        n_blocks = len(args.tuple_tables[0]) - 1
        layout = gpu_field.field_work_layout(dim, n, n_out, nb, n_blocks, nodes.shape[1])
        self.layout = cuda.to_device(layout)
        self.row = int(layout[-1])
        self.resident = max(1, WORK_BYTES // (8 * self.row))

    def _launches(self, count):
        """(offset, size, work) per launch of at most ``resident`` networks."""
        work = cuda.device_array((min(count, self.resident), self.row))
        for off in range(0, count, self.resident):
            yield off, min(self.resident, count - off), work

    def compute(self, start, count):
        """(DeviceStatistics (count, 1, n_stat), raw (count, n_raw) on the host, None) of
        networks start .. start + count - 1 (no NTK for fields); for a deformed run the
        statistics [x | s] come back to the host, (count, 1, n_stat) float64 (module
        docstring)."""
        a = self.args
        n_raw = a.n_raw
        stats = cuda.device_array((count, 1, a.n_stat))
        raw = cuda.device_array((count, max(n_raw, 1)))
        for off, size, work in self._launches(count):
            part = slice(off, off + size)
            gpu_field.field_statistics_kernel[size, THREADS](
                np.int64(start + off),
                a.seed,
                self.xt,
                self.n_features,
                self.n_out,
                *self.radial,
                *self.tables,
                bool(a.four_point),
                *self.tuple_tables,
                stats[part],
                np.int64(a.n_save),
                raw[part],
                *self.deformation,
                work,
                self.layout,
            )
        host_raw = raw.copy_to_host()[:, :n_raw] if n_raw else np.empty((count, 0))
        cuda.synchronize()
        if self.deformed:
            return stats.copy_to_host(), host_raw, None
        return DeviceStatistics(stats), host_raw, None

    def fields(self, start, count):
        """phi of networks start .. start + count - 1: (count, n_out, B) on the host."""
        out = cuda.device_array((count, self.args.n_out, self.args.n_inputs))
        for off, size, work in self._launches(count):
            gpu_field.fields_kernel[size, THREADS](
                np.int64(start + off),
                self.args.seed,
                self.xt,
                self.n_features,
                *self.radial,
                out[off : off + size],
                work,
                self.layout,
            )
        return out.copy_to_host()

    def features(self, start, count):
        """(omega (count, d, N) = w / 2 pi, beta (count, N) = b / 2 pi, amp (count, n_out,
        N)) of networks start .. start + count - 1, on the host."""
        a = self.args
        n = a.n_features
        omega = cuda.device_array((count, a.xt.shape[0], n))
        beta = cuda.device_array((count, n))
        amp = cuda.device_array((count, a.n_out, n))
        for off, size, work in self._launches(count):
            part = slice(off, off + size)
            gpu_field.features_kernel[size, THREADS](
                np.int64(start + off),
                a.seed,
                *self.radial,
                omega[part],
                beta[part],
                amp[part],
                work,
                self.layout,
            )
        return omega.copy_to_host(), beta.copy_to_host(), amp.copy_to_host()
