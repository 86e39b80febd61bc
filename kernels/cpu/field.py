"""Cos-net fields (nnft_fast.cosnet): exact parameter sampling, the field on B points and
its per-network statistics.

Network ``e`` of seed ``s`` draws, on its layer-1 streams (``rng.stream_id(1, purpose)``):
- RADIUS: N uniforms u_i -> |w_i| = F^-1(u_i F_total) (``radial_momentum``);
- WEIGHTS: N d normals, element i d + j -> direction n_i / |n_i| (Gaussian momenta: w_i =
  n_i / length);
- BIAS: N uniforms -> phase b_i = 2 pi (u_i - 1/2), uniform on (-pi, pi);
- AMPLITUDE: n_out N normals g, element k N + i -> a_ki = scale (k_i^2 + m^2)^(alpha/2) g_ki
  ("gaussian"; "constant": sign(g_ki), so the outputs' signs are independent).
Angles are carried in turns (omega = w / 2 pi, beta = b / 2 pi) and the cosine is the
libm-free ``rng.cos_turns``, so the loop over features vectorises.

Per network the field phi (n_out x B, kept input-major as phi^T, B x n_out) is reduced to
the statistics vector [G | Q | GG] of ``moments.layer_statistics`` (``field_moments``:
the field is layer 1, its n_out outputs the neurons) followed by the tuple statistics of
``nnft_fast.tuples.TupleLayout``: per distinct block of points (a multiset)
M(blk) = (1/n_out) sum_k prod_{p in blk} phi_k(x_p), and per statistic the product of its
blocks' M.
"""

import math

import numpy as np
from numba import njit, prange

from .codes import (
    AMPLITUDE_GAUSSIAN,
    RADIAL_D1_ALPHA0,
    RADIAL_D2,
    RADIAL_D3_ALPHA0,
    RADIAL_GAUSSIAN,
    RADIAL_UNIFORM,
)
from .config import FASTMATH, FASTMATH_REDUCTIONS
from .deformation import interaction
from .moments import chunk_bounds, chunk_count
from .rng import (
    PURPOSE_AMPLITUDE,
    PURPOSE_BIAS,
    PURPOSE_RADIUS,
    PURPOSE_WEIGHTS,
    cos_turns,
    fill_normal,
    fill_uniform,
    stream_id,
)

FIELD_LAYER = 1
_INV_TWO_PI = 1.0 / (2.0 * math.pi)
_NEWTON_STEPS = 60
_LAST_STEP = 2.0**-54  # see _newton_inverse


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def x_minus_atan(x):
    """x - arctan(x) for x >= 0, by its series below 1/4 (no cancellation)."""
    if x >= 0.25:
        return x - math.atan(x)
    x2 = x * x
    term = x * x2
    total = 0.0
    sign = 1.0
    for n in range(1, 40):
        total += sign * term / (2 * n + 1)
        term *= x2
        sign = -sign
    return total


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def radial_density(k, dim, mass, alpha):
    """f(k) = k^(d-1) (k^2 + m^2)^-(1 + alpha)."""
    power = 1.0
    for _ in range(dim - 1):
        power *= k
    return power * (k * k + mass * mass) ** (-(1.0 + alpha))


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _table_cdf(k, j, dim, mass, alpha, table, gl):
    """F(k) = F(k_j) + int_{k_j}^k f, the sub-integral by Gauss-Legendre (gl: (2, n)
    nodes and weights on [-1, 1])."""
    lo = table[j, 0]
    mid = 0.5 * (k + lo)
    half = 0.5 * (k - lo)
    acc = 0.0
    for q in range(gl.shape[1]):
        acc += gl[1, q] * radial_density(mid + half * gl[0, q], dim, mass, alpha)
    return table[j, 1] + half * acc


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _table_interval(target, u, table):
    """j with F(k_j) <= target < F(k_j+1): the nodes hold about equal mass, so start at
    floor(u K) and step to the right interval."""
    last = table.shape[0] - 2
    j = min(np.int64(u * (last + 1)), last)
    while j > 0 and table[j, 1] > target:
        j -= 1
    while j < last and table[j + 1, 1] <= target:
        j += 1
    return j


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _hermite_guess(target, j, dim, table):
    """k(F) at F = target by the cubic Hermite interpolant of interval j (slopes
    dk/dF = 1/f at its nodes); on an interval starting at k = 0 (d >= 2, f = 0 there)
    the power law F ~ k^d instead."""
    k0, k1 = table[j, 0], table[j + 1, 0]
    f0, f1 = table[j, 2], table[j + 1, 2]
    h = table[j + 1, 1] - table[j, 1]
    if h <= 0.0:
        return k0
    tau = (target - table[j, 1]) / h
    if f0 <= 0.0:
        return k1 * tau ** (1.0 / dim)
    t2 = tau * tau
    t3 = t2 * tau
    return (
        (2.0 * t3 - 3.0 * t2 + 1.0) * k0
        + (t3 - 2.0 * t2 + tau) * h / f0
        + (3.0 * t2 - 2.0 * t3) * k1
        + (t3 - t2) * h / f1
    )


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _cdf_and_density(k, j, code, dim, mass, alpha, table, gl):
    """(F(k), f(k)) for the Newton codes: the closed form of d = 3, alpha = 0, else
    ``_table_cdf`` of interval j."""
    if code == RADIAL_D3_ALPHA0:
        return mass * x_minus_atan(k / mass), k * k / (k * k + mass * mass)
    return _table_cdf(k, j, dim, mass, alpha, table, gl), radial_density(k, dim, mass, alpha)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _newton_inverse(target, u, code, dim, mass, alpha, table, gl):
    """k with F(k) = target: the table interval, a cubic Hermite guess, then Newton
    safeguarded by bisection inside the interval. A step s with c (s / k)^2 <= 2^-54,
    c = 1 + max(d - 1, 2 |1 + alpha|) / 2 (a bound on k f' / 2 f), leaves an error below
    rounding, so it is the last."""
    j = _table_interval(target, u, table)
    lo, hi = table[j, 0], table[j + 1, 0]
    k = min(max(_hermite_guess(target, j, dim, table), lo), hi)
    curvature = 1.0 + 0.5 * max(dim - 1.0, 2.0 * abs(1.0 + alpha))
    for _ in range(_NEWTON_STEPS):
        value, slope = _cdf_and_density(k, j, code, dim, mass, alpha, table, gl)
        g = value - target
        if g > 0.0:
            hi = k
        else:
            lo = k
        if slope > 0.0:
            step = g / slope
            if curvature * step * step <= _LAST_STEP * k * k:
                return k - step
            new = k - step
        else:
            new = lo
        if not lo < new < hi:
            new = 0.5 * (lo + hi)
        if hi - lo <= 4e-16 * hi:
            return new
        k = new
    return k


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def radial_momentum(u, code, params, table, gl):
    """|w| = F^-1(u F_total) for a uniform u in (0, 1) (nnft_fast.cosnet.RadialSampler:
    params = (m, Lambda, alpha, d, F_total, scale))."""
    mass, lam, alpha = params[0], params[1], params[2]
    dim = np.int64(params[3])
    target = u * params[4]
    if code == RADIAL_UNIFORM:
        return lam * u ** (1.0 / dim)
    if code == RADIAL_D1_ALPHA0:
        return mass * math.tan(u * math.atan(lam / mass))
    if code == RADIAL_D2:
        if alpha == 0.0:
            return mass * math.sqrt(math.expm1(2.0 * target))
        exponent = -math.log1p(-2.0 * alpha * target * mass ** (2.0 * alpha)) / alpha
        return mass * math.sqrt(math.expm1(exponent))
    return _newton_inverse(target, u, code, dim, mass, alpha, table, gl)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def draw_features(network, seed, code, params, table, gl, amp_code, omega, beta, amp, work):
    """The parameters of network ``network`` (module docstring): omega (d, N) = w / 2 pi,
    beta (N,) = b / 2 pi in (-1/2, 1/2), amp (n_out, N). work: >= N (d + 1) float64."""
    dim, n = omega.shape
    n_out = amp.shape[0]
    radius = work[:n]
    normals = work[n : n * (dim + 1)]
    fill_uniform(radius, seed, network, stream_id(FIELD_LAYER, PURPOSE_RADIUS), 0.0, 1.0)
    fill_normal(normals, seed, network, stream_id(FIELD_LAYER, PURPOSE_WEIGHTS), 1.0)
    fill_uniform(beta, seed, network, stream_id(FIELD_LAYER, PURPOSE_BIAS), -0.5, 0.5)
    flat_amp = amp.reshape(n_out * n)
    fill_normal(flat_amp, seed, network, stream_id(FIELD_LAYER, PURPOSE_AMPLITUDE), 1.0)
    if amp_code != AMPLITUDE_GAUSSIAN:  # constant |a|, independent signs across outputs
        for q in range(flat_amp.size):
            flat_amp[q] = 1.0 if flat_amp[q] >= 0.0 else -1.0
    mass, alpha, scale = params[0], params[2], params[5]
    for i in range(n):
        if code == RADIAL_GAUSSIAN:  # w = n / length; params[1] = 1 / length
            factor = params[1] * _INV_TWO_PI
            amp_scale = scale
        else:
            k = radial_momentum(radius[i], code, params, table, gl)
            norm2 = 0.0
            for j in range(dim):
                norm2 += normals[i * dim + j] * normals[i * dim + j]
            factor = k / math.sqrt(norm2) * _INV_TWO_PI
            amp_scale = scale if alpha == 0.0 else scale * (k * k + mass * mass) ** (0.5 * alpha)
        for j in range(dim):
            omega[j, i] = factor * normals[i * dim + j]
        for c in range(n_out):
            amp[c, i] *= amp_scale


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def feature_cosines(xt, a, omega, beta, cosines):
    """cosines[i] = cos(2 pi (omega_i . x_a + beta_i)) at point a of xt (d, B): the phase
    is accumulated over j in its own vectorised passes, then reduced to [-1/2, 1/2) turns."""
    n = beta.size
    for i in range(n):
        cosines[i] = beta[i]
    for j in range(xt.shape[0]):
        x = xt[j, a]
        row = omega[j]
        for i in range(n):
            cosines[i] += row[i] * x
    for i in range(n):
        turns = cosines[i]
        cosines[i] = cos_turns(turns)


@njit(fastmath=FASTMATH_REDUCTIONS, error_model="numpy", cache=True)
def amplitude_sums(amp, cosines, phit_row):
    """phit_row[k] = sum_i amp[k, i] cosines[i] (a pure reduction, fixed order)."""
    n = cosines.size
    for c in range(amp.shape[0]):
        row = amp[c]
        acc = 0.0
        for i in range(n):
            acc += row[i] * cosines[i]
        phit_row[c] = acc


@njit(fastmath=FASTMATH, error_model="numpy", cache=True, inline="always")
def _cos_of_phase(x0, x1, x2, w0, w1, w2, beta, i):
    """cos(2 pi (w0_i x0 + w1_i x1 + w2_i x2 + beta_i)), the phase reduced to [-1/2, 1/2)
    turns (d <= 3: the missing coordinates are 0)."""
    turns = beta[i] + w0[i] * x0 + w1[i] * x1 + w2[i] * x2
    return cos_turns(turns)


@njit(fastmath=FASTMATH_REDUCTIONS, error_model="numpy", cache=True)
def _fused_sum(x0, x1, x2, w0, w1, w2, beta, amp_row):
    """sum_i amp_row[i] cos(phase_i): one pass, no stores (d <= 3, one output)."""
    acc = 0.0
    for i in range(beta.size):
        acc += amp_row[i] * _cos_of_phase(x0, x1, x2, w0, w1, w2, beta, i)
    return acc


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def _fused_cosines(x0, x1, x2, w0, w1, w2, beta, cosines):
    """cosines[i] = cos(phase_i) in one pass (d <= 3)."""
    for i in range(beta.size):
        cosines[i] = _cos_of_phase(x0, x1, x2, w0, w1, w2, beta, i)


@njit(fastmath=FASTMATH, error_model="numpy", cache=True)
def evaluate_field(xt, omega, beta, amp, phit, cosines):
    """phit[a, k] = sum_i amp[k, i] cos(2 pi (omega_i . x_a + beta_i)) for the points
    xt (d, B); cosines: (N,) scratch. Each sum runs over i in a fixed order.

    d <= 3 takes one vectorised pass over the features per point (phase, cosine and, for
    one output, the sum fused); larger d accumulates the phase in passes over j."""
    dim, nb = xt.shape
    n_out = amp.shape[0]
    if dim > 3:
        for a in range(nb):
            feature_cosines(xt, a, omega, beta, cosines)
            amplitude_sums(amp, cosines, phit[a])
        return
    zeros = cosines if n_out == 1 else np.zeros(beta.size)
    if n_out == 1:
        zeros[:] = 0.0
    w0 = omega[0]
    w1 = omega[1] if dim > 1 else zeros
    w2 = omega[2] if dim > 2 else zeros
    for a in range(nb):
        x0 = xt[0, a]
        x1 = xt[1, a] if dim > 1 else 0.0
        x2 = xt[2, a] if dim > 2 else 0.0
        if n_out == 1:
            phit[a, 0] = _fused_sum(x0, x1, x2, w0, w1, w2, beta, amp[0])
        else:
            _fused_cosines(x0, x1, x2, w0, w1, w2, beta, cosines)
            amplitude_sums(amp, cosines, phit[a])


@njit(fastmath=FASTMATH, cache=True)
def field_moments(phit, pair_a, pair_b, quad_p1, quad_p2, four_point, out, pair_products):
    """[G | Q | GG] (or [G]) of the field phit (B x n_out), as ``moments.layer_statistics``
    defines them with the n_out outputs as neurons, looping over the few outputs inside
    (no per-pair slices: B is large, n_out small). pair_products: >= n_pairs float64
    (used with the four-point statistics only)."""
    n_out = phit.shape[1]
    n_pairs = pair_a.size
    n_quads = quad_p1.size if four_point else 0
    out[: n_pairs + n_quads] = 0.0
    nb = phit.shape[0]
    for c in range(n_out):
        t = 0
        for a in range(nb):  # pairs a <= b in row-major order, as the pair tables list them
            phi_a = phit[a, c]
            if four_point:  # keep the pair products for Q
                for b in range(a, nb):
                    pair_products[t + b - a] = phi_a * phit[b, c]
                for q in range(t, t + nb - a):
                    out[q] += pair_products[q]
            else:
                for b in range(a, nb):
                    out[t + b - a] += phi_a * phit[b, c]
            t += nb - a
        for u in range(n_quads):
            out[n_pairs + u] += pair_products[quad_p1[u]] * pair_products[quad_p2[u]]
    if n_out > 1:
        inv_n = 1.0 / n_out
        for t in range(n_pairs + n_quads):
            out[t] *= inv_n
    if four_point:
        idx = n_pairs + n_quads
        for t1 in range(n_pairs):
            for t2 in range(t1, n_pairs):
                out[idx] = out[t1] * out[t2]
                idx += 1


@njit(fastmath=FASTMATH, cache=True)
def tuple_statistics(phit, block_ptr, block_points, stat_ptr, stat_blocks, out, monomials):
    """out[s] = prod over the blocks of statistic s of M(blk) = (1/n_out) sum_k prod_{p in
    blk} phi_k(x_p) (module docstring); monomials: scratch of one float64 per block."""
    nb, n_out = phit.shape
    for blk in range(block_ptr.size - 1):
        acc = 0.0
        for c in range(n_out):
            prod = 1.0
            for q in range(block_ptr[blk], block_ptr[blk + 1]):
                prod *= phit[block_points[q], c]
            acc += prod
        monomials[blk] = acc / n_out
    for s in range(stat_ptr.size - 1):
        prod = 1.0
        for q in range(stat_ptr[s], stat_ptr[s + 1]):
            prod *= monomials[stat_blocks[q]]
        out[s] = prod


@njit(cache=True)
def _feature_buffers(dim, n, n_out, nb):
    """Per-chunk buffers: omega, beta, amp, work, cosines, phit."""
    return (
        np.empty((dim, n)),
        np.empty(n),
        np.empty((n_out, n)),
        np.empty(n * (dim + 1)),
        np.empty(n),
        np.empty((nb, n_out)),
    )


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_field_statistics(
    first,
    count,
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
    par_code,
):
    """stats[t, 0] = [G | Q | GG | tuple statistics] of the field of network first + t,
    followed, for a ``deformed`` run, by its interaction s = S_int / coupling on the nodes
    node_xt (d, Q) with weights node_weights (``deformation.interaction``);
    raw[t] = its first ``n_save`` outputs on every point, output-major (phi_k(x_a) at
    k B + a). Parallel over chunks of networks, each with its own buffers."""
    dim, nb = xt.shape
    n_tuple = stat_ptr.size - 1
    n_moment = stats.shape[2] - n_tuple - (1 if deformed else 0)
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        omega, beta, amp, work, cosines, phit = _feature_buffers(dim, n_features, n_out, nb)
        pair_products = np.empty(pair_a.size)
        monomials = np.empty(block_ptr.size - 1)
        phit_nodes = np.empty((node_xt.shape[1], n_out))
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            draw_features(
                first + t, seed, code, params, table, gl, amp_code, omega, beta, amp, work
            )
            evaluate_field(xt, omega, beta, amp, phit, cosines)
            row = stats[t, 0]
            field_moments(
                phit, pair_a, pair_b, quad_p1, quad_p2, four_point, row[:n_moment], pair_products
            )
            tuple_statistics(
                phit,
                block_ptr,
                block_points,
                stat_ptr,
                stat_blocks,
                row[n_moment : n_moment + n_tuple],
                monomials,
            )
            if deformed:
                evaluate_field(node_xt, omega, beta, amp, phit_nodes, cosines)
                row[n_moment + n_tuple] = interaction(
                    pot_code, par_code, node_weights, phit_nodes, omega, beta, amp
                )
            for c in range(n_save):
                for a in range(nb):
                    raw[t, c * nb + a] = phit[a, c]


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_fields(first, count, seed, xt, n_features, code, params, table, gl, amp_code, out):
    """out[t] = phi (n_out, B) of network first + t."""
    dim, nb = xt.shape
    n_out = out.shape[1]
    n_chunks = chunk_count(count)
    for chunk in prange(n_chunks):
        omega, beta, amp, work, cosines, phit = _feature_buffers(dim, n_features, n_out, nb)
        start, stop = chunk_bounds(count, n_chunks, chunk)
        for t in range(start, stop):
            draw_features(
                first + t, seed, code, params, table, gl, amp_code, omega, beta, amp, work
            )
            evaluate_field(xt, omega, beta, amp, phit, cosines)
            out[t] = phit.T


@njit(fastmath=FASTMATH, parallel=True, cache=True)
def batch_features(first, count, seed, dim, code, params, table, gl, amp_code, omega, beta, amp):
    """The parameters (omega, beta, amp) of networks first .. first + count - 1 (tests and
    cross-checks): omega (count, d, N), beta (count, N), amp (count, n_out, N)."""
    n = beta.shape[1]
    for t in prange(count):
        work = np.empty(n * (dim + 1))
        draw_features(
            first + t, seed, code, params, table, gl, amp_code, omega[t], beta[t], amp[t], work
        )
