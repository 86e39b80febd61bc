"""Benchmark-only probe kernels: pieces of the nnft_fast CPU path timed in isolation.

They reuse the package kernels (``nnft_fast.kernels.cpu.*``) unchanged and mirror the
structure of ``moments.batch_statistics`` (prange over chunks of networks, reused buffers),
so that

    rng_only        the random normals a network needs and nothing else,
    forward_only    the forward pass (moments.forward_one) into a reused buffer, no moments,
    moments_only    the per-layer statistics of precomputed preactivations, no forward,

add up (roughly) to ``nf.sample``. Each writes one number per network into ``sink`` so
the work cannot be optimised away. Parallel kernels, so not cached
(docs/architecture.md#numba): they compile in about a second on first use.

``Probes`` binds them to one config (its ``KernelArgs``, precomputed preactivations, the
sinks) for bench.compare's time breakdown and the pytest-benchmark cases;
``breakdown`` is bench.compare's list of them as timed methods.
"""

import numpy as np
from numba import njit, prange

import nnft_fast as nf
from nnft_fast.accumulators import MomentLayout
from nnft_fast.kernels.cpu import codes
from nnft_fast.kernels.cpu.moments import (
    batch_preactivations,
    chunk_bounds,
    chunk_count,
    forward_one,
    forward_workspace_size,
    layer_statistics,
    statistics_workspace_size,
)
from nnft_fast.kernels.cpu.rng import PURPOSE_WEIGHTS, fill_normal, stream_id
from nnft_fast.run import EnsembleRun

from .harness import CallMethod
from .machine import blas_threads

METHOD_CODES = {"projected": codes.METHOD_PROJECTED, "dense": codes.METHOD_DENSE}


@njit(parallel=True)
def rng_only(first, count, seed, normals_per_layer, sink):
    """Per network: fill one buffer of normals_per_layer[l] standard normals per layer."""
    n_layers = normals_per_layer.size
    for t in prange(count):
        acc = 0.0
        for layer in range(1, n_layers + 1):
            buf = np.empty(normals_per_layer[layer - 1])
            fill_normal(buf, seed, first + t, stream_id(layer, PURPOSE_WEIGHTS), 1.0)
            acc += buf[buf.size - 1]
        sink[t] = acc


@njit(parallel=True)
def forward_only(
    method_code, count, seed, xt, widths, cw, cb, init_code, act_code, offsets, sink, xi, gamma
):
    """Per network: ``forward_one`` (all layers) into buffers reused within a chunk, as in
    ``batch_statistics``; no statistics (xi, gamma: the residual coefficients)."""
    nb = xt.shape[1]
    n_scratch = forward_workspace_size(method_code, widths, nb)
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        zbuf = np.empty(offsets[widths.size - 1])
        s_buf = np.empty(widths.max() * nb)
        scratch = np.empty(n_scratch)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            forward_one(
                method_code,
                t,
                seed,
                xt,
                widths,
                cw,
                cb,
                init_code,
                act_code,
                zbuf,
                offsets,
                s_buf,
                scratch,
                xi,
                gamma,
            )
            sink[t] = zbuf[zbuf.size - 1]


@njit(parallel=True)
def moments_only(
    count, pre, widths, nb, offsets, pair_a, pair_b, quad_p1, quad_p2, four_point, n_stat, sink
):
    """Per network t: the statistics of ``batch_statistics`` for the preactivations
    pre[t % len(pre)] (cycling over a small, cache-friendly set), no forward pass."""
    n_layers = widths.size - 1
    n_pre = pre.shape[0]
    n_max = widths.max()
    for t in prange(count):
        stats = np.empty((n_layers, n_stat))
        work = np.empty(statistics_workspace_size(n_max, nb, pair_a.size))
        row = pre[t % n_pre]
        acc = 0.0
        for layer in range(1, n_layers + 1):
            zt = row[offsets[layer - 1] : offsets[layer]].reshape((nb, widths[layer]))
            layer_statistics(
                zt, pair_a, pair_b, quad_p1, quad_p2, four_point, stats[layer - 1], work
            )
            acc += stats[layer - 1, n_stat - 1]
        sink[t] = acc


# --------------------------------------------------------------------------------------
# The probes bound to one config
# --------------------------------------------------------------------------------------
def kernel_args(cfg, init, x, seed):
    """The ``KernelArgs`` nf.sample would run ``cfg`` with (CPU backend)."""
    return EnsembleRun(cfg.network(init), x, seed, backend="cpu").kernel_args


class Probes:
    """The probe kernels on config ``cfg`` with inputs ``x``: ``rng(method)``,
    ``forward(method, init)`` and ``moments(four_point)`` return functions of n (networks)."""

    def __init__(self, cfg, x, seed, n_pre=32):
        self.cfg = cfg
        self.seed = np.uint64(seed)
        self.args = {init: kernel_args(cfg, init, x, seed) for init in ("gaussian", "orthogonal")}
        self._sink = np.empty(0)
        g = self.args["gaussian"]
        self.pre = np.empty((n_pre, g.offsets[-1]))  # projected Gaussian preactivations
        batch_preactivations(
            codes.METHOD_PROJECTED,
            np.int64(0),
            n_pre,
            self.seed,
            *g.network_args,
            g.offsets,
            self.pre,
            g.xi,
            g.gamma,
        )

    def sink(self, n):
        if self._sink.size < n:
            self._sink = np.empty(n)
        return self._sink[:n]

    def rng(self, method="projected"):
        counts = self.cfg.normals_per_layer(method)
        return lambda n: rng_only(np.int64(0), n, self.seed, counts, self.sink(n))

    def forward(self, method="projected", init="gaussian"):
        a = self.args[init]
        code = METHOD_CODES[method]
        return lambda n: forward_only(
            code, n, self.seed, *a.network_args, a.offsets, self.sink(n), a.xi, a.gamma
        )

    def moments(self, four_point=True):
        a = self.args["gaussian"]
        n_stat = MomentLayout(self.cfg.n_inputs, four_point).n_stat
        tables = MomentLayout(self.cfg.n_inputs, True).kernel_tables()
        return lambda n: moments_only(
            n,
            self.pre,
            a.widths,
            self.cfg.n_inputs,
            a.offsets,
            *tables,
            four_point,
            n_stat,
            self.sink(n),
        )


def one_thread(fn):
    """fn under ``nf.thread_limit(1)`` (Numba on one thread)."""

    def run(n):
        with nf.thread_limit(1):
            fn(n)

    return run


def blas1(fn):
    """fn with NumPy's OpenBLAS on one thread."""

    def run(n):
        with blas_threads(1):
            fn(n)

    return run


def breakdown(cfg, x, seed):
    """bench.compare's time-breakdown probes of the projected (and dense) path."""
    p = Probes(cfg, x, seed)
    n_proj = cfg.normals_per_network("projected")
    n_dense = cfg.normals_per_network("dense")
    return [
        CallMethod(*kl, fn)
        for kl, fn in (
            (("rng_projected", f"RNG only, projected normals ({n_proj:,}/network)"), p.rng()),
            (
                ("rng_projected_1thread", "RNG only, projected normals, 1 thread"),
                one_thread(p.rng()),
            ),
            (
                ("forward_projected_gaussian", "forward only, projected gaussian (forward_one)"),
                p.forward(),
            ),
            (
                (
                    "forward_projected_orthogonal",
                    "forward only, projected orthogonal (forward_one)",
                ),
                p.forward("projected", "orthogonal"),
            ),
            (("moments_two_point", "moments only, two-point"), p.moments(False)),
            (("moments_four_point", "moments only, two+four-point"), p.moments(True)),
            (("rng_dense", f"RNG only, dense normals ({n_dense:,}/network)"), p.rng("dense")),
            (
                ("forward_dense_gaussian", "forward only, dense gaussian (forward_one)"),
                p.forward("dense"),
            ),
            (
                (
                    "forward_dense_gaussian_blas1",
                    "forward only, dense gaussian, OpenBLAS at 1 thread",
                ),
                blas1(p.forward("dense")),
            ),
        )
    ]
