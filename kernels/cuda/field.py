"""Cos-net fields on the GPU, one thread block per network: twins of ``kernels/cpu/field.py``.

Network e of seed s draws the CPU's parameters (the same streams, element indices and
transforms: module docstring of ``kernels/cpu/field.py``), so its features agree with the
CPU's to rounding. The radial inverse F^-1 of every ``RADIAL_*`` code (closed forms and
the table Newton with Gauss-Legendre sub-integrals) is the CPU's own scalar source compiled
for the device (``device.device_twins``), one definition for both backends; so is the
libm-free cosine ``rng.cos_turns``.

Per block, threads stride over features: the field phi_k(x_a) = sum_i a_ki cos(2 pi
(omega_i . x_a + beta_i)) is summed per thread in feature order and then over the block
by a fixed-order tree, FIELD_CHUNK (point, output) sums at a time. The statistics
[G | Q | GG] (``moments.layer_statistics`` of the CPU: the field is layer 1, its n_out
outputs the neurons) and the tuple statistics (``tuple_statistics``: CSR tables of
``nnft_fast.tuples.TupleLayout``) then run with threads over statistics, each summing
over the outputs in order, since n_out is small and the number of statistics large.

A deformed run (``nnft_fast.deformations``: a built-in local potential) also evaluates
the field on the Q nodes of its quadrature rule, by the same ``field_values``, and
appends the network's interaction s = sum_q W_q sum_i V(phi_i(y_q)) to its statistics
(``deformation.local_interaction``), as the CPU ``batch_field_statistics`` does.

Nothing lives in fixed-size shared arrays but the tree sums: every buffer of a network
is a slice of its row of a float64 ``work`` array cut by ``field_work_layout``, so any
number B of points fits that device memory allows.

Kernels:
    field_statistics_kernel  [G | Q | GG | tuple statistics (| s)] and raw outputs (the
                             CPU ``batch_field_statistics``)
    fields_kernel            phi (count, n_out, B) (the CPU ``batch_fields``)
    features_kernel          (omega, beta, amp) (the CPU ``batch_features``)
"""

import math

import numpy as np
from numba import cuda, float64

from ..cpu import field as cpu_field
from ..cpu import rng as cpu_rng
from ..cpu.codes import AMPLITUDE_GAUSSIAN, RADIAL_GAUSSIAN
from ..cpu.field import _INV_TWO_PI, FIELD_LAYER
from ..cpu.rng import PURPOSE_AMPLITUDE, PURPOSE_BIAS, PURPOSE_RADIUS, PURPOSE_WEIGHTS
from .block import THREADS, fill_normals, fill_uniforms
from .deformation import local_interaction
from .device import device_twins
from .rng import cos_turns

FIELD_CHUNK = 8  # (point, output) sums of the field reduced over the block together
assert FIELD_CHUNK <= THREADS

# The radial inverse of the CPU, callees first (one source for both backends).
_RADIAL = (
    "x_minus_atan",
    "radial_density",
    "_table_cdf",
    "_table_interval",
    "_hermite_guess",
    "_cdf_and_density",
    "_newton_inverse",
    "radial_momentum",
)
_radial = device_twins(cpu_field, _RADIAL)
radial_momentum = _radial["radial_momentum"]
stream_id = device_twins(cpu_rng, ("stream_id",))["stream_id"]


def field_work_layout(dim, n_features, n_out, nb, n_blocks, n_nodes):
    """Offsets (int64[8]) of omega, radius, beta, amp, phit, monomials, phit_nodes and the
    end in one float64 work row per network: omega (N d, feature-major: the direction
    normals, scaled in place), radius (N uniforms), beta (N), amp (n_out N,
    output-major), phit (B n_out, input-major: phi_k(x_a) at a n_out + k), the tuple
    monomials (one per distinct block of points) and phit_nodes (Q n_out, the field on a
    deformation's Q quadrature nodes, as phit; Q = 0 without a deformation)."""
    n = int(n_features)
    sizes = (
        n * int(dim),
        n,
        n,
        int(n_out) * n,
        int(nb) * int(n_out),
        int(n_blocks),
        int(n_nodes) * int(n_out),
    )
    return np.cumsum((0,) + sizes).astype(np.int64)


@cuda.jit(device=True)
def draw_network(
    network, seed, code, params, table, gl, amp_code, dim, n, n_out, omega, radius, beta, amp
):
    """The parameters of network ``network``, as the CPU ``draw_features`` draws them:
    omega[i d + j] = w_ij / 2 pi, beta[i] = b_i / 2 pi, amp[k N + i] = a_ki."""
    if code != RADIAL_GAUSSIAN:  # Gaussian momenta leave the radius stream unused
        fill_uniforms(radius, n, seed, network, stream_id(FIELD_LAYER, PURPOSE_RADIUS), 0.0, 1.0)
    fill_normals(omega, n * dim, seed, network, stream_id(FIELD_LAYER, PURPOSE_WEIGHTS), 1.0)
    fill_uniforms(beta, n, seed, network, stream_id(FIELD_LAYER, PURPOSE_BIAS), -0.5, 0.5)
    fill_normals(amp, n_out * n, seed, network, stream_id(FIELD_LAYER, PURPOSE_AMPLITUDE), 1.0)
    mass, alpha, scale = params[0], params[2], params[5]
    i = cuda.threadIdx.x
    while i < n:
        if code == RADIAL_GAUSSIAN:  # w = n / length; params[1] = 1 / length
            factor = params[1] * _INV_TWO_PI
            amp_scale = scale
        else:
            k = radial_momentum(radius[i], code, params, table, gl)
            norm2 = 0.0
            for j in range(dim):
                norm2 += omega[i * dim + j] * omega[i * dim + j]
            factor = k / math.sqrt(norm2) * _INV_TWO_PI
            amp_scale = scale if alpha == 0.0 else scale * (k * k + mass * mass) ** (0.5 * alpha)
        for j in range(dim):
            omega[i * dim + j] = factor * omega[i * dim + j]
        for c in range(n_out):
            value = amp[c * n + i]
            if amp_code != AMPLITUDE_GAUSSIAN:  # constant |a|, independent signs
                value = 1.0 if value >= 0.0 else -1.0
            amp[c * n + i] = value * amp_scale
        i += THREADS
    cuda.syncthreads()


@cuda.jit(device=True)
def field_values(xt, omega, beta, amp, n, n_out, phit, shared):
    """phit[a n_out + k] = sum_i amp[k N + i] cos(2 pi (omega_i . x_a + beta_i)) (the CPU
    ``evaluate_field``): per chunk of FIELD_CHUNK consecutive (a, k), each thread sums its
    features in order, each cosine computed once per chunk and point, then a fixed-order
    tree sums the threads. shared: (FIELD_CHUNK, THREADS) float64."""
    dim, nb = xt.shape
    t = cuda.threadIdx.x
    part = cuda.local.array(FIELD_CHUNK, float64)
    total = nb * n_out
    for q0 in range(0, total, FIELD_CHUNK):
        size = min(FIELD_CHUNK, total - q0)
        for r in range(FIELD_CHUNK):
            part[r] = 0.0
        i = t
        while i < n:
            last = -1
            cosine = 0.0
            for r in range(size):
                a = (q0 + r) // n_out
                c = q0 + r - a * n_out
                if a != last:
                    turns = beta[i]
                    for j in range(dim):
                        turns += omega[i * dim + j] * xt[j, a]
                    cosine = cos_turns(turns)
                    last = a
                part[r] += amp[c * n + i] * cosine
            i += THREADS
        for r in range(FIELD_CHUNK):
            shared[r, t] = part[r]
        cuda.syncthreads()
        width = THREADS // 2
        while width > 0:
            if t < width:
                for r in range(size):
                    shared[r, t] += shared[r, t + width]
            cuda.syncthreads()
            width //= 2
        if t < size:
            phit[q0 + t] = shared[t, 0]
        cuda.syncthreads()


@cuda.jit(device=True)
def field_moments(phit, n_out, pair_a, pair_b, quad_p1, quad_p2, four_point, out):
    """out = [G | Q | GG] (or [G]) of the field phit[a n_out + k] (the CPU
    ``layer_statistics`` with the outputs as neurons): threads over statistics, each
    summing over the outputs in order."""
    t = cuda.threadIdx.x
    n_pairs = pair_a.size
    n_quads = quad_p1.size if four_point else 0
    inv_n = 1.0 / n_out
    u = t
    while u < n_pairs + n_quads:
        acc = 0.0
        if u < n_pairs:
            za = pair_a[u] * n_out
            zb = pair_b[u] * n_out
            for c in range(n_out):
                acc += phit[za + c] * phit[zb + c]
        else:
            p1 = quad_p1[u - n_pairs]
            p2 = quad_p2[u - n_pairs]
            za = pair_a[p1] * n_out
            zb = pair_b[p1] * n_out
            zc = pair_a[p2] * n_out
            zd = pair_b[p2] * n_out
            for c in range(n_out):
                acc += (phit[za + c] * phit[zb + c]) * (phit[zc + c] * phit[zd + c])
        out[u] = acc * inv_n
        u += THREADS
    if four_point:
        cuda.syncthreads()
        t1 = t
        while t1 < n_pairs:  # row t1 of GG: G_t1 G_t2 for t2 >= t1
            idx = n_pairs + n_quads + t1 * n_pairs - t1 * (t1 - 1) // 2
            for t2 in range(t1, n_pairs):
                out[idx] = out[t1] * out[t2]
                idx += 1
            t1 += THREADS
    cuda.syncthreads()


@cuda.jit(device=True)
def field_tuples(phit, n_out, block_ptr, block_points, stat_ptr, stat_blocks, out, monomials):
    """out[s] = prod over the blocks of statistic s of M(blk) = (1/n_out) sum_k prod_{p in
    blk} phi_k(x_p) (the CPU ``tuple_statistics``); monomials: one float64 per block."""
    t = cuda.threadIdx.x
    blk = t
    while blk < block_ptr.size - 1:
        acc = 0.0
        for c in range(n_out):
            prod = 1.0
            for q in range(block_ptr[blk], block_ptr[blk + 1]):
                prod *= phit[block_points[q] * n_out + c]
            acc += prod
        monomials[blk] = acc / n_out
        blk += THREADS
    cuda.syncthreads()
    s = t
    while s < stat_ptr.size - 1:
        prod = 1.0
        for q in range(stat_ptr[s], stat_ptr[s + 1]):
            prod *= monomials[stat_blocks[q]]
        out[s] = prod
        s += THREADS
    cuda.syncthreads()


@cuda.jit(device=True)
def network_field(
    network, seed, xt, n, n_out, code, params, table, gl, amp_code, row, layout, shared
):
    """Draw network ``network`` into its work row and evaluate its field at phit (the
    ``layout[4]:layout[5]`` slice of the row)."""
    dim = xt.shape[0]
    omega = row[layout[0] : layout[1]]
    radius = row[layout[1] : layout[2]]
    beta = row[layout[2] : layout[3]]
    amp = row[layout[3] : layout[4]]
    phit = row[layout[4] : layout[5]]
    draw_network(
        network, seed, code, params, table, gl, amp_code, dim, n, n_out, omega, radius, beta, amp
    )
    field_values(xt, omega, beta, amp, n, n_out, phit, shared)


@cuda.jit(device=True)
def network_interaction(node_xt, node_weights, pot_code, n, n_out, row, layout, shared, reduce):
    """s of the network drawn into its work row (``network_field``): its field on the
    nodes node_xt (d, Q) into phit_nodes (the ``layout[6]:layout[7]`` slice of the row),
    then ``deformation.local_interaction``; returned to every thread. reduce: (THREADS,)
    float64."""
    phit_nodes = row[layout[6] : layout[7]]
    omega = row[layout[0] : layout[1]]
    beta = row[layout[2] : layout[3]]
    amp = row[layout[3] : layout[4]]
    field_values(node_xt, omega, beta, amp, n, n_out, phit_nodes, shared)
    return local_interaction(pot_code, node_weights, phit_nodes, n_out, reduce)


@cuda.jit
def field_statistics_kernel(
    first,
    seed,
    xt,
    n_features,
    n_out,
    code,
    params,
    table,
    gl,
    amp_code,
    pair_a,
    pair_b,
    quad_p1,
    quad_p2,
    four_point,
    block_ptr,
    block_points,
    stat_ptr,
    stat_blocks,
    stats,
    n_save,
    raw,
    deformed,
    node_xt,
    node_weights,
    pot_code,
    work,
    layout,
):
    """stats[t, 0] = [G | Q | GG | tuple statistics] of the field of network first + t,
    block t, followed, for a ``deformed`` run, by its interaction s on the nodes node_xt
    (d, Q) with weights node_weights and potential pot_code
    (``deformation.local_interaction``); raw[t, k B + a] = phi_k(x_a) for k < n_save
    (the CPU ``batch_field_statistics``). work: (>= count, layout[-1]) float64 cut by
    ``field_work_layout`` (layout)."""
    net = cuda.blockIdx.x
    if net >= stats.shape[0]:
        return
    nb = xt.shape[1]
    shared = cuda.shared.array((FIELD_CHUNK, THREADS), float64)
    reduce = cuda.shared.array(THREADS, float64)
    row = work[net]
    network_field(
        first + net,
        seed,
        xt,
        n_features,
        n_out,
        code,
        params,
        table,
        gl,
        amp_code,
        row,
        layout,
        shared,
    )
    phit = row[layout[4] : layout[5]]
    out = stats[net, 0]
    n_tuple = stat_ptr.size - 1
    n_moment = out.size - n_tuple - (1 if deformed else 0)
    field_moments(phit, n_out, pair_a, pair_b, quad_p1, quad_p2, four_point, out[:n_moment])
    field_tuples(
        phit,
        n_out,
        block_ptr,
        block_points,
        stat_ptr,
        stat_blocks,
        out[n_moment : n_moment + n_tuple],
        row[layout[5] : layout[6]],
    )
    if deformed:
        s = network_interaction(
            node_xt, node_weights, pot_code, n_features, n_out, row, layout, shared, reduce
        )
        if cuda.threadIdx.x == 0:
            out[n_moment + n_tuple] = s
    e = cuda.threadIdx.x
    while e < n_save * nb:
        c = e // nb
        raw[net, e] = phit[(e - c * nb) * n_out + c]
        e += THREADS


@cuda.jit
def fields_kernel(
    first, seed, xt, n_features, code, params, table, gl, amp_code, out, work, layout
):
    """out[t] = phi (n_out, B) of network first + t, block t (the CPU ``batch_fields``)."""
    net = cuda.blockIdx.x
    if net >= out.shape[0]:
        return
    n_out = out.shape[1]
    nb = out.shape[2]
    shared = cuda.shared.array((FIELD_CHUNK, THREADS), float64)
    row = work[net]
    network_field(
        first + net,
        seed,
        xt,
        n_features,
        n_out,
        code,
        params,
        table,
        gl,
        amp_code,
        row,
        layout,
        shared,
    )
    phit = row[layout[4] : layout[5]]
    e = cuda.threadIdx.x
    while e < n_out * nb:
        c = e // nb
        a = e - c * nb
        out[net, c, a] = phit[a * n_out + c]
        e += THREADS


@cuda.jit
def features_kernel(first, seed, code, params, table, gl, amp_code, omega, beta, amp, work, layout):
    """(omega[t] (d, N) = w / 2 pi, beta[t] (N,), amp[t] (n_out, N)) of network first + t,
    block t (the CPU ``batch_features``)."""
    net = cuda.blockIdx.x
    if net >= beta.shape[0]:
        return
    dim = omega.shape[1]
    n = omega.shape[2]
    n_out = amp.shape[1]
    row = work[net]
    feat = row[layout[0] : layout[1]]
    bias = row[layout[2] : layout[3]]
    ampl = row[layout[3] : layout[4]]
    draw_network(
        first + net,
        seed,
        code,
        params,
        table,
        gl,
        amp_code,
        dim,
        n,
        n_out,
        feat,
        row[layout[1] : layout[2]],
        bias,
        ampl,
    )
    i = cuda.threadIdx.x
    while i < n:
        for j in range(dim):
            omega[net, j, i] = feat[i * dim + j]
        beta[net, i] = bias[i]
        for c in range(n_out):
            amp[net, c, i] = ampl[c * n + i]
        i += THREADS


KERNELS = {
    "field_statistics_kernel": field_statistics_kernel,
    "fields_kernel": fields_kernel,
    "features_kernel": features_kernel,
}
