"""Host side of the CUDA backend: device copies of a run's constant arrays, batch
launches of the ``kernels/cuda`` kernels, and block accumulation on the device.

``CudaEngine`` is the twin of ``cpu_engine.CpuEngine``: built from the run's
``KernelArgs`` alone, with the same ``compute(start, count)``.

A batch's per-network statistics stay on the GPU (``DeviceStatistics``); the
accumulators add them there with ``add_to_blocks_kernel`` in the CPU's order, so only the
block sums (n_blocks x L x n_stat float64) and one finiteness flag per network and layer
cross the bus. Networks are launched one thread block each, of
``block.block_threads(widths)`` threads (one warp for a network no wider than a warp, up
to ``block.THREADS``), at most ``WORK_BYTES`` of scratch at a time.
"""

import numpy as np
from numba import cuda

from nnft_fast.kernels.cuda import forward as gpu_forward
from nnft_fast.kernels.cuda import moments as gpu_moments
from nnft_fast.kernels.cuda.block import block_threads

WORK_BYTES = 2 * 2**30  # scratch per launch (one float64 row per network)
MAX_INPUTS = gpu_forward.MAX_B


def ntk_supported(method, init):
    """Whether ``kernels/cuda/ntk.py`` covers the NTK of (method, init)."""
    from nnft_fast.kernels.cuda import ntk as gpu_ntk

    return (method, init) in gpu_ntk.SUPPORTED


class DeviceStatistics:
    """Per-network statistics (count, L, n_stat) of a batch, left on the device."""

    def __init__(self, array):
        self.array = array

    @property
    def shape(self):
        return self.array.shape

    def add_to_blocks(self, first, block_sums, block_counts):
        """block_sums[b] += statistics of networks first + t with (first + t) mod n_blocks
        == b, in index order (as ``kernels.cpu.moments.add_to_blocks``), in place."""
        sums = cuda.to_device(block_sums)
        counts = cuda.to_device(block_counts)
        grid = gpu_moments.elementwise_grid(block_sums.size)
        gpu_moments.add_to_blocks_kernel[grid](self.array, np.int64(first), sums, counts)
        sums.copy_to_host(block_sums)
        counts.copy_to_host(block_counts)

    def nonfinite_rows(self):
        """(count, L) bool: whether network t's statistics at layer l hold an inf or NaN
        (``nonfinite_rows_kernel``)."""
        count, n_layers, _ = self.array.shape
        bad = cuda.device_array((count, n_layers), np.uint8)
        grid = gpu_moments.elementwise_grid(count * n_layers)
        gpu_moments.nonfinite_rows_kernel[grid](self.array, bad)
        return bad.copy_to_host().astype(bool)

    def copy_to_host(self):
        return self.array.copy_to_host()


class CudaEngine:
    """Launches the CUDA kernels for batches of one run, from its ``KernelArgs``."""

    def __init__(self, args):
        self.args = args
        self.codes = (int(args.method_code), int(args.init_code), int(args.act_code))
        self.xt, self.widths, self.cw, self.cb, self.xi, self.gamma = (
            cuda.to_device(a) for a in (args.xt, args.widths, args.cw, args.cb, args.xi, args.gamma)
        )
        self.tables = tuple(cuda.to_device(t) for t in args.tables)
        self.save_layers = cuda.to_device(args.save_layers)
        self.save_neurons = cuda.to_device(args.save_neurons)
        if args.ntk is None:
            layout = gpu_forward.work_layout(
                args.method_code,
                args.init_code,
                args.widths,
                args.n_inputs,
                residual=bool(np.any(args.xi != 0.0)),
            )
        else:
            from nnft_fast.kernels.cuda import ntk as gpu_ntk

            layout = gpu_ntk.ntk_work_layout(
                args.method_code,
                args.init_code,
                args.widths,
                args.n_inputs,
                args.ntk.readouts,
                residual=bool(np.any(args.xi != 0.0)),
            )
        self.layout = cuda.to_device(layout)
        self.row = int(layout[-1])
        self.threads = block_threads(args.widths)
        self.resident = max(1, WORK_BYTES // (8 * self.row))

    def compute(self, start, count):
        """(DeviceStatistics, raw (count, n_raw) on the host, DeviceStatistics of the NTK
        or None) of networks start .. start + count - 1."""
        a = self.args
        method_code, init_code, act_code = self.codes
        n_raw = a.n_raw
        stats = cuda.device_array((count, a.n_layers, a.n_stat))
        raw = cuda.device_array((count, max(n_raw, 1)))
        ntk_stats = None
        if a.ntk is not None:
            ntk_stats = cuda.device_array((count, a.n_layers, a.n_ntk_stat))
        work = cuda.device_array((min(count, self.resident), self.row))
        four_point = bool(a.four_point)
        seed = a.seed
        for off in range(0, count, self.resident):
            size = min(self.resident, count - off)
            first = np.int64(start + off)
            part = slice(off, off + size)
            if ntk_stats is None:
                gpu_moments.statistics_kernel[size, self.threads](
                    method_code,
                    first,
                    seed,
                    self.xt,
                    self.widths,
                    self.cw,
                    self.cb,
                    init_code,
                    act_code,
                    *self.tables,
                    four_point,
                    stats[part],
                    self.save_layers,
                    self.save_neurons,
                    raw[part],
                    work,
                    self.layout,
                    self.xi,
                    self.gamma,
                )
            else:
                from nnft_fast.kernels.cuda import ntk as gpu_ntk

                gpu_ntk.ntk_statistics_kernel[size, self.threads](
                    method_code,
                    first,
                    seed,
                    self.xt,
                    self.widths,
                    self.cw,
                    self.cb,
                    init_code,
                    act_code,
                    a.ntk.lambda_b,
                    a.ntk.lambda_w,
                    *self.tables,
                    four_point,
                    stats[part],
                    ntk_stats[part],
                    np.int64(a.ntk.readouts),
                    self.save_layers,
                    self.save_neurons,
                    raw[part],
                    work,
                    self.layout,
                    self.xi,
                    self.gamma,
                )
        host_raw = raw.copy_to_host()[:, :n_raw] if n_raw else np.empty((count, 0))
        cuda.synchronize()
        return (
            DeviceStatistics(stats),
            host_raw,
            None if ntk_stats is None else DeviceStatistics(ntk_stats),
        )
