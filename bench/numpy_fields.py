"""Plain-NumPy cos-net field ensemble: what a competent NumPy user would write.

The field of one network of width N on B points x_a in R^3 is

    phi_k(x) = sum_i a_ki cos(w_i . x + b_i),    k = 1..n_out,

with the law of ``nf.CosNet(3, N, m, Lambda, alpha=0)`` (docs/fields.md): b_i ~ U(-pi, pi);
w_i = |w_i| n_i / |n_i| with n_i a standard normal 3-vector (a uniform direction) and |w_i|
of density f(k) ~ k^2 / (k^2 + m^2) on [0, Lambda], drawn by the exact inverse CDF:
F(k) = k - m arctan(k / m) = u F(Lambda), solved by a vectorised Newton iteration (convex
and increasing: from below it overshoots once, then decreases to the root); amplitudes
a_ki = scale g_ki, scale = sqrt(2 Z / ((2 pi)^3 N)), Z = 4 pi F(Lambda), g ~ N(0, 1)
("gaussian") or sign(g) ("constant").

Per chunk of networks: one draw of every parameter with ``np.random.Generator``, the
phases as one (chunk N, 3) x (3, B) matmul into a reused (chunk, N, B) buffer, one
``np.cos`` over it in place, and phi = a @ cos (batched matmul). The statistics are those
of nnft_fast per network (docs/estimators.md), summed over the chunk with matrix
products: G = (1/n_out) sum_k phi_k phi_k^T (B x B), and with four-point statistics, on
the pairs p = (a <= b) (``np.triu_indices``, row-major) with y_kp = phi_ka phi_kb,
Q = (1/n_out) sum_k y_k y_k^T and GG = G_p G_p'^T (P x P; for n_out = 1 they coincide).
Each chunk goes into the next of ``n_blocks`` block sums in turn, so memory stays flat and
the block sums give jackknife errors (bench.fields hands them to the project's
estimators).

This module deliberately imports nothing from nnft_fast: an independent implementation,
the speed baseline and a cross-check of the sampler (``fields_from_turns`` evaluates the
field of given parameters, e.g. those of ``FieldCpuEngine.features``).
"""

import math

import numpy as np

_NEWTON_STEPS = 60
_SERIES_TERMS = 20  # x - arctan x below 1/4: 0.25^(2n - 2) < 1e-17 relative at n = 15


def x_minus_atan(x):
    """x - arctan(x) for x >= 0 (array), by its alternating series below 1/4 (no
    cancellation)."""
    x = np.asarray(x, dtype=np.float64)
    out = x - np.arctan(x)
    small = x < 0.25
    if np.any(small):
        xs = x[small]
        x2 = xs * xs
        term = xs * x2
        total = np.zeros_like(xs)
        for n in range(1, _SERIES_TERMS):
            total += (term if n % 2 else -term) / (2 * n + 1)
            term = term * x2
        out[small] = total
    return out


def radial_total(mass, cutoff):
    """F(Lambda) = Lambda - m arctan(Lambda / m) = int_0^Lambda k^2 / (k^2 + m^2) dk."""
    return mass * float(x_minus_atan(cutoff / mass))


def radial_inverse(target, mass):
    """k with k - m arctan(k / m) = target (array), by Newton from below."""
    target = np.asarray(target, dtype=np.float64)
    k = np.maximum(target, np.cbrt(3.0 * mass * mass * target))
    for _ in range(_NEWTON_STEPS):
        g = mass * x_minus_atan(k / mass) - target
        slope = k * k / (k * k + mass * mass)
        step = np.divide(g, slope, out=np.zeros_like(k), where=slope > 0.0)
        new = k - step
        new = np.where(new > 0.0, new, 0.5 * k)
        done = np.all(np.abs(new - k) <= 4e-16 * new)
        k = new
        if done:
            break
    return k


class CosNetLaw:
    """The parameters' law of a d = 3, alpha = 0 cos-net (module docstring)."""

    def __init__(self, dim, width, mass, cutoff, alpha=0.0, amplitude="gaussian", n_out=1):
        if dim != 3 or alpha != 0.0:
            raise ValueError("the NumPy cos-net baseline is written for d = 3, alpha = 0")
        if amplitude not in ("gaussian", "constant"):
            raise ValueError(f"amplitude must be 'gaussian' or 'constant', got {amplitude!r}")
        self.dim, self.width, self.n_out = int(dim), int(width), int(n_out)
        self.mass, self.cutoff, self.amplitude = float(mass), float(cutoff), amplitude
        self.total = radial_total(self.mass, self.cutoff)
        z = 4.0 * math.pi * self.total
        self.scale = math.sqrt(2.0 * z / ((2.0 * math.pi) ** 3 * self.width))

    def draw(self, rng, count):
        """(w (count, N, 3), b (count, N), a (count, n_out, N)) of ``count`` networks."""
        n = self.width
        k = radial_inverse(rng.random((count, n)) * self.total, self.mass)
        direction = rng.standard_normal((count, n, self.dim))
        direction *= (k / np.linalg.norm(direction, axis=2))[:, :, None]
        b = rng.uniform(-math.pi, math.pi, (count, n))
        a = rng.standard_normal((count, self.n_out, n))
        if self.amplitude == "constant":
            np.sign(a, out=a)
        a *= self.scale
        return direction, b, a


def evaluate(x, w, b, a, work=None):
    """phi (count, n_out, B) of the networks (w, b, a) on the points x (B, 3); ``work``: a
    reusable float64 buffer of at least count N B elements."""
    count, n, dim = w.shape
    nb = x.shape[0]
    if work is None or work.size < count * n * nb:
        work = np.empty(count * n * nb)
    phase = work[: count * n * nb].reshape(count * n, nb)
    np.matmul(w.reshape(count * n, dim), x.T, out=phase)
    phase = phase.reshape(count, n, nb)
    phase += b[:, :, None]
    np.cos(phase, out=phase)
    return np.matmul(a, phase)


def fields_from_turns(x, omega, beta, amp):
    """phi (count, n_out, B) for parameters in turns, as ``FieldCpuEngine.features`` gives
    them: omega (count, 3, N) = w / 2 pi, beta (count, N) = b / 2 pi, amp (count, n_out, N);
    the phase is reduced to [-1/2, 1/2) turns before the cosine."""
    turns = np.einsum("cdn,bd->cnb", omega, x) + beta[:, :, None]
    turns -= np.floor(turns + 0.5)
    return np.matmul(amp, np.cos(2.0 * math.pi * turns))


class FieldStats:
    """Block sums of the per-network statistics (module docstring): g (n_blocks, B, B), with
    four-point statistics q and gg (n_blocks, P, P) on the pairs (pair_a, pair_b)."""

    def __init__(self, n_points, four_point, n_blocks=64):
        self.n_points, self.four_point, self.n_blocks = int(n_points), bool(four_point), n_blocks
        self.pair_a, self.pair_b = np.triu_indices(self.n_points)
        p = self.pair_a.size
        self.g = np.zeros((n_blocks, self.n_points, self.n_points))
        if self.four_point:
            self.q = np.zeros((n_blocks, p, p))
            self.gg = np.zeros((n_blocks, p, p))
        self.counts = np.zeros(n_blocks, np.int64)
        self.next_block = 0

    @property
    def n_networks(self):
        return int(self.counts.sum())

    def add(self, phi):
        """Add the networks phi (count, n_out, B) to the next block."""
        count, n_out, nb = phi.shape
        blk = self.next_block
        self.next_block = (blk + 1) % self.n_blocks
        flat = phi.reshape(count * n_out, nb)
        self.g[blk] += (flat.T @ flat) / n_out
        if self.four_point:
            y = (flat[:, self.pair_a] * flat[:, self.pair_b]).reshape(count, n_out, -1)
            q = np.einsum("cki,ckj->ij", y, y) if n_out > 1 else y[:, 0].T @ y[:, 0]
            self.q[blk] += q / n_out
            if n_out == 1:
                self.gg[blk] += q  # G = y for a single output: GG = Q
            else:
                g = y.mean(axis=1)
                self.gg[blk] += g.T @ g
        self.counts[blk] += count


def default_chunk(width, n_points, budget=1 << 21):
    """Networks per chunk: a phase buffer of about ``budget`` doubles, 1 to 4096."""
    return int(min(4096, max(1, budget // (width * n_points))))


class NumpyFieldEnsemble:
    """The baseline in chunks of ``chunk`` networks (the interface of bench.dense):
    ``run(n, keep)``, ``next_network``, ``stats`` (a ``FieldStats``). Kept calls draw from
    ``default_rng([seed, first network])``, others from ``default_rng([seed, 10**6 + k])``."""

    def __init__(self, law, x, *, four_point, seed=0, chunk=None, n_blocks=64):
        self.law = law
        self.x = np.ascontiguousarray(x, dtype=np.float64)
        self.seed = seed
        self.chunk = chunk or default_chunk(law.width, self.x.shape[0])
        self.stats = FieldStats(self.x.shape[0], four_point, n_blocks)
        self.next_network = 0
        self._scratch = 0
        self._scratch_stats = FieldStats(self.x.shape[0], four_point, 2)
        self._work = None

    def run(self, n, keep=True):
        if keep:
            rng = np.random.default_rng([self.seed, self.next_network])
            self.next_network += n
            stats = self.stats
        else:
            self._scratch += 1
            rng = np.random.default_rng([self.seed, 10**6 + self._scratch])
            stats = self._scratch_stats
        size = min(self.chunk, n) * self.law.width * self.x.shape[0]
        if self._work is None or self._work.size < size:
            self._work = np.empty(size)
        for start in range(0, n, self.chunk):
            count = min(self.chunk, n - start)
            w, b, a = self.law.draw(rng, count)
            stats.add(evaluate(self.x, w, b, a, self._work))
