"""Memory a request needs, estimated before anything is allocated.

Every entry point whose allocations grow with its arguments lists its large arrays as
``Need``s and calls ``check_memory``, which refuses the request with a ValueError naming
the largest one when the total exceeds ``available_memory()``:

- ``run_needs``: one batch of an ``EnsembleRun`` on the CPU kernels
  (``kernels.cpu.moments``, ``kernels.cpu.ntk``): the scratch of every network in flight
  (one chunk of networks per Numba thread, each with its own buffers: dense weights,
  projected factors, layer buffers, the NTK's backward vectors), and the batch's
  statistics and raw outputs or the outputs of ``preactivations`` / ``ntk_samples``;
- ``accumulator_need``: block sums (n_blocks x L x n_stat float64);
- ``estimate_need``: the full-tensor estimates of one layer over all jackknife replicas;
- ``haar_needs``: ``haar_orthogonal``'s output and QR buffers.

Sizes are evaluated in floating point (the kernels' own workspace functions on float64
widths), so absurd sizes (widths of 2^70) give a huge number, never an int64 overflow;
a request of 2^63 bytes or more is refused whatever the machine, so every index the
kernels compute fits in int64.
"""

import math
import os
import resource
from dataclasses import dataclass

import numba
import numpy as np

from nnft_fast.kernels.cpu.codes import METHOD_CODES
from nnft_fast.kernels.cpu.moments import (
    chunk_count,
    forward_workspace_size,
    statistics_workspace_size,
)
from nnft_fast.kernels.cpu.ntk import ntk_workspace_size

from .ntk import ntk_statistics_size

INT64_BYTES = 2**63
# Full (B, B, B, B) float64 tensors per jackknife replica alive at once while one layer's
# four-point or NTK estimates are formed (accumulators.layer_estimates, ntk.ntk_estimates:
# the fields, their temporaries and the jackknife's deviations).
ESTIMATE_TENSORS = 12
_UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


@dataclass(frozen=True)
class Need:
    """``nbytes`` bytes of memory (a float: requests may be absurd) for ``what``."""

    what: str
    nbytes: float


def _proc_kb(path, key):
    """The ``key:`` entry (kB) of a /proc file as bytes, or None."""
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def available_memory():
    """Bytes this process can still allocate: MemAvailable of /proc/meminfo (Linux), else
    the machine's physical memory (os.sysconf); at most what an address-space limit
    (``ulimit -v``) leaves above the process's current size."""
    available = _proc_kb("/proc/meminfo", "MemAvailable")
    if available is None:
        available = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit != resource.RLIM_INFINITY:
        used = _proc_kb("/proc/self/status", "VmSize") or 0
        available = min(available, max(0, limit - used))
    return available


def format_bytes(nbytes):
    """'8.0 TB'-style size in decimal units."""
    value, unit = float(nbytes), 0
    while value >= 1000 and unit < len(_UNITS) - 1:
        value /= 1000
        unit += 1
    return f"{value:.0f} bytes" if unit == 0 else f"{value:.1f} {_UNITS[unit]}"


def total_bytes(needs):
    return math.fsum(need.nbytes for need in needs)


def fits(needs):
    """Whether ``needs`` fit in the available memory (and below INT64_BYTES)."""
    return total_bytes(needs) <= min(available_memory(), INT64_BYTES - 1)


def check_memory(needs, request="this run"):
    """Refuse (ValueError) ``needs`` that exceed the available memory, naming the total and
    the largest need: 'this run needs ~32.0 GB of memory, ~32.0 GB of it for ...'."""
    if not fits(needs):
        largest = max(needs, key=lambda need: need.nbytes)
        raise ValueError(
            f"{request} needs ~{format_bytes(total_bytes(needs))} of memory, "
            f"~{format_bytes(largest.nbytes)} of it for {largest.what}; "
            f"available ~{format_bytes(available_memory())}"
        )


def moment_statistics_size(n_inputs, four_point):
    """``accumulators.MomentLayout.n_stat`` without enumerating the quads: pairs
    p = B(B+1)/2, then (four-point) quads C(B+3, 4) and pair products p(p+1)/2."""
    pairs = n_inputs * (n_inputs + 1) // 2
    if not four_point:
        return pairs
    return pairs + math.comb(n_inputs + 3, 4) + pairs * (pairs + 1) // 2


def _networks(count):
    return f"{count} network{'' if count == 1 else 's'}"


def _scratch_need(run, kind, in_flight):
    """Need of the CPU kernels' buffers of ``in_flight`` networks computed at once."""
    widths = np.array(run.network.widths, np.float64)  # absurd widths: huge, no overflow
    nb, n_max, n_layers = run.inputs.shape[0], widths.max(), run.network.n_layers
    n_forward = run.n_forward  # B, plus a deformation's quadrature nodes
    dense = run.method == "dense"
    method_code = METHOD_CODES[run.method]
    layer = int(np.argmax(widths[1:] * widths[:-1])) + 1
    # float64 arrays the weight draws allocate themselves (kernels.cpu.haar): the Haar
    # matrix, its copy and the Gaussian it is the QR of (dense); the frame's Gaussian
    transient = 0.0
    if run.network.init == "orthogonal":
        transient = 3 * widths[layer] * widths[layer - 1] if dense else n_forward * n_max
    statistics = kind == "statistics"
    stat_work = statistics_workspace_size(n_max, nb, nb * (nb + 1) // 2) if statistics else 0
    if kind == "ntk_samples" or (statistics and run.ntk is not None):
        r = run.ntk.readouts
        nbytes = 8 * (
            ntk_workspace_size(method_code, widths, nb, r)
            + transient
            + stat_work
            + nb * (widths[1:].sum() + n_max)  # preactivations, act'
            + (n_layers * r * r * nb * nb if statistics else 0)
        )  # the NTKs
        part = "the dense weights of every layer" if dense else "the projected factors"
        what = f"the NTK workspace ({part} and {n_layers * r * nb} backward vectors)"
    else:
        # preactivations and activations (and z^(l-1) for a residual connection)
        buffers = (3 if run.network.is_residual else 2) if statistics else 1
        nbytes = run.dtype.itemsize * (
            forward_workspace_size(method_code, widths, n_forward) + buffers * n_max * n_forward
        ) + 8 * (transient + stat_work)
        if dense:
            what = (
                f"the dense weights of layer {layer} ({run.network.widths[layer]} x "
                f"{run.network.widths[layer - 1]}"
                f"{', with float64 Haar QR buffers' if transient else ''})"
            )
        else:
            what = (
                f"the projected sampler's factors and layer buffers (up to {int(n_max)} x "
                f"{n_forward})"
            )
    return Need(f"{what} per network in flight ({in_flight} at once)", in_flight * nbytes)


def run_needs(run, count, kind, threads=None):
    """Needs of a batch of ``count`` networks of ``run`` (an ``EnsembleRun``) on the CPU
    kernels with ``threads`` Numba threads (default: the current number): kind
    "statistics" (``run.compute``), "preactivations" or "ntk_samples"."""
    network, nb, n_layers = run.network, run.inputs.shape[0], run.network.n_layers
    size = run.dtype.itemsize
    threads = numba.get_num_threads() if threads is None else threads
    # chunk_count takes an int64: counts up to 2^63 (indices below 2^63) would overflow it,
    # and any count beyond 2^62 has more chunks than threads
    needs = [_scratch_need(run, kind, min(chunk_count(min(count, 2**62)), threads))]
    if kind == "statistics":
        four_point = run.layout.four_point
        n_stat = moment_statistics_size(nb, four_point)
        layout = f"four-point statistics of B = {nb} inputs" if four_point else "statistics"
        needs += [
            Need(
                f"the statistics of a batch of {_networks(count)} ({n_layers} layers x "
                f"{n_stat:,} {layout}, float64)",
                8.0 * count * n_layers * n_stat,
            ),
            Need(
                f"the raw outputs of a batch of {_networks(count)}",
                float(count) * sum(n for _, n in run.save) * nb * size,
            ),
        ]
        if run.ntk is not None:
            needs.append(
                Need(
                    f"the NTK statistics of a batch of {_networks(count)}",
                    8.0 * count * n_layers * ntk_statistics_size(nb),
                )
            )
    elif kind == "preactivations":
        total = float(count) * nb * sum(network.widths[1:]) * size
        needs.append(
            Need(
                f"the preactivations of {_networks(count)} (all layers, "
                f"{run.dtype.name}, and the returned copy)",
                2 * total,
            )
        )
    else:
        r = run.ntk.readouts
        total = 8.0 * count * n_layers * r * r * nb * nb
        needs.append(
            Need(f"the NTKs of {_networks(count)} (all layers, and the returned copy)", 2 * total)
        )
    return needs


def accumulator_need(what, n_blocks, n_layers, n_stat):
    """Need of block sums (n_blocks x n_layers x n_stat float64)."""
    return Need(
        f"the {what} ({n_blocks} blocks x {n_layers} layers x {n_stat:,} statistics, float64)",
        8.0 * n_blocks * n_layers * n_stat,
    )


def estimate_need(n_replicas, n_inputs, layer):
    """Need of one layer's full-tensor four-point (or NTK) estimates over all networks and
    ``n_replicas`` jackknife replicas."""
    return Need(
        f"the (B, B, B, B) estimates of layer {layer} at B = {n_inputs} inputs "
        f"(the full ensemble and {n_replicas} jackknife replicas)",
        8.0 * ESTIMATE_TENSORS * (n_replicas + 1) * float(n_inputs) ** 4,
    )


def haar_needs(n_rows, n_cols, size, threads=None):
    """Needs of ``haar_orthogonal(n_rows, n_cols, size)``: the output, and per matrix in
    flight (one per Numba thread) its QR's Gaussian and Q (float64)."""
    in_flight = min(size, numba.get_num_threads() if threads is None else threads)
    matrix = 8.0 * n_rows * n_cols
    return [
        Need(f"the output ({size} x {n_rows} x {n_cols} float64)", size * matrix),
        Need(
            f"the QR buffers (2 x {n_rows} x {n_cols} float64) per matrix in flight "
            f"({in_flight} at once)",
            2 * in_flight * matrix,
        ),
    ]
