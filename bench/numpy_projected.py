"""Plain-NumPy *projected* baseline: nnft_fast's algorithm (docs/projected-sampler.md)
written the way a competent NumPy user would, vectorised over a chunk of networks.

A layer acts only on the B columns of S = act(z) (S = X^T at layer 1), an (n_in x B)
matrix. For S = Q R (Q with orthonormal columns), W S = (W Q) R, and for the two
rotation-invariant laws W Q has a law free of Q. Any R with R^T R = S^T S will do (a
different R is U R with U orthogonal, and both laws of W Q are invariant under W Q U^T),
so R is the transposed Cholesky factor of the (B x B) Gram matrix:

    G = S^T S = L L^T                 batched: (c, B, n_in) @ (c, n_in, B), np.linalg.cholesky
    gaussian    z = F L^T,  F (n_out x B) iid N(0, cw / n_in)
    orthogonal  z = s H[:n_out] L^T,  H an (m x B) Haar frame, m = max(n_out, n_in) (batched
                np.linalg.qr of a Gaussian, Mezzadri's sign fix), s = sqrt(cw max(1, n_out/n_in))

(the first n_out rows of an m-row frame: when the layer narrows, O Q is the top of a
Haar frame of the wider space; when it does not, m = n_out and H is the whole frame).
Exact in law, jointly over the layers; biases N(0, cb) are added afterwards. Where the
Gram matrix is singular (dead ReLU units, repeated inputs, fewer active neurons than
inputs) Cholesky fails: that chunk's factors come from ``eigh`` instead (G = V diag(w) V^T,
R = diag(sqrt(w)) V^T), exact at any rank. A layer with n_in <= B has nothing to project
(the projected path draws n_out n_in normals there as well): its weights are drawn
explicitly (bench/numpy_baseline.py's Gaussian or Haar weights).

Every layer's preactivations are reduced to nnft_fast's per-network statistics vector
[G | Q | GG] (the pair products y_p = z_a z_b, their means, one batched (P x n) @ (n x P)
product for the four-point averages, docs/estimators.md), in ``MomentLayout`` order; the
tables are built here from scratch (``statistic_tables``) and checked against the
package's by bench/projected.py, which also sums the vectors into an
``nnft_fast.accumulators.MomentAccumulator`` for the project's estimators.

``chunk_statistics`` draws one chunk; ``threaded_statistics`` splits a chunk over
``threads`` worker threads, each with its own ``np.random.Generator`` (NumPy's
multithreaded-generation recipe: its random fills, BLAS calls and LAPACK gufuncs release
the GIL), so that NumPy gets the same threads as nnft_fast. This module deliberately
imports nothing from nnft_fast.
"""

import itertools
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .numpy_baseline import INITS, gaussian_weights, haar_frames, haar_weights

ACTIVATIONS = {"relu": lambda z: np.maximum(z, 0.0), "tanh": np.tanh, "linear": lambda z: z}


def statistic_tables(n_inputs, four_point):
    """(pair_a, pair_b, quad_p1, quad_p2, gg_1, gg_2): the pairs a <= b, the quadruples
    a <= b <= c <= d as (pair of a, b; pair of c, d), the pairs of pairs p <= p' of GG."""
    pairs = [(a, b) for a in range(n_inputs) for b in range(a, n_inputs)]
    pair_a, pair_b = (np.array(v, np.int64) for v in zip(*pairs))
    if not four_point:
        empty = np.zeros(0, np.int64)
        return pair_a, pair_b, empty, empty, empty, empty
    pid = {p: i for i, p in enumerate(pairs)}
    quads = list(itertools.combinations_with_replacement(range(n_inputs), 4))
    quad_p1 = np.array([pid[q[:2]] for q in quads], np.int64)
    quad_p2 = np.array([pid[q[2:]] for q in quads], np.int64)
    gg_1, gg_2 = np.triu_indices(len(pairs))
    return pair_a, pair_b, quad_p1, quad_p2, gg_1, gg_2


def layer_statistics(z, tables, four_point, xp=np):
    """Per-network [G | Q | GG] (or [G]) of preactivations z (..., n, B) -> (..., n_stat);
    ``xp``: the array namespace (NumPy here, ``jax.numpy`` in bench/jax_projected.py)."""
    pair_a, pair_b, quad_p1, quad_p2, gg_1, gg_2 = tables
    y = z[..., pair_a] * z[..., pair_b]  # (..., n, P) pair products
    g = y.mean(axis=-2)
    if not four_point:
        return g
    m = xp.swapaxes(y, -1, -2) @ y / z.shape[-2]  # (..., P, P): <z_a z_b z_c z_d>
    return xp.concatenate([g, m[..., quad_p1, quad_p2], g[..., gg_1] * g[..., gg_2]], axis=-1)


def eigh_factor(gram):
    """R (c, B, B) with R^T R = gram at any rank: diag(sqrt(w)) V^T of gram = V diag(w) V^T."""
    w, v = np.linalg.eigh(gram)
    return np.sqrt(np.clip(w, 0.0, None))[..., :, None] * np.swapaxes(v, -1, -2)


def gram_factor(s):
    """R (c, B, B) with R^T R = S^T S for s (c, n_in, B): the transposed Cholesky factor,
    or ``eigh_factor`` for the whole chunk where some Gram matrix is singular."""
    gram = np.swapaxes(s, -1, -2) @ s
    try:
        return np.swapaxes(np.linalg.cholesky(gram), -1, -2)
    except np.linalg.LinAlgError:
        return eigh_factor(gram)


def projected_frames(rng, count, n_out, n_in, k, cw):
    """F (count, n_out, k) of the orthogonal law: the first n_out rows of Haar (m x k)
    frames, m = max(n_out, n_in), times sqrt(cw max(1, n_out / n_in))."""
    h = haar_frames(rng, count, max(n_out, n_in), k)
    return np.sqrt(cw * max(1.0, n_out / n_in)) * h[:, :n_out]


def projected_layer(rng, s, n_out, init, cw):
    """W s in law for s (c, n_in, B): (c, n_out, B), without forming W (module docstring)."""
    c, n_in, nb = s.shape
    if n_in <= nb:  # nothing to project: explicit weights, as many normals
        draw = gaussian_weights if init == "gaussian" else haar_weights
        return draw(rng, c, n_out, n_in, cw) @ s
    r = gram_factor(s)
    if init == "gaussian":
        f = rng.standard_normal((c, n_out, nb))
        f *= np.sqrt(cw / n_in)
    else:
        f = projected_frames(rng, c, n_out, n_in, nb, cw)
    return f @ r


def chunk_statistics(rng, widths, xt, count, init, cw, cb, activation, four_point, tables):
    """Statistics (count, L, n_stat) of ``count`` fresh projected networks drawn from
    ``rng``. xt: the inputs as (n_0, B); cw, cb: scalars (every layer)."""
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    act = ACTIVATIONS[activation]
    s = np.broadcast_to(xt, (count,) + xt.shape)  # (c, n_0, B)
    out = []
    for n_out in widths[1:]:
        z = projected_layer(rng, s, n_out, init, cw)
        if cb > 0.0:
            z += np.sqrt(cb) * rng.standard_normal((count, n_out, 1))
        out.append(layer_statistics(z, tables, four_point))
        s = act(z)
    return np.stack(out, axis=1)


def threaded_statistics(pool, rngs, count, widths, xt, *rest):
    """``chunk_statistics(rng, widths, xt, count, *rest)`` of ``count`` networks split over
    the generators ``rngs``, one part per worker thread of ``pool`` (None: one part)."""
    if pool is None or count < len(rngs):
        return chunk_statistics(rngs[0], widths, xt, count, *rest)
    sizes = [len(p) for p in np.array_split(np.arange(count), len(rngs))]
    jobs = [pool.submit(chunk_statistics, r, widths, xt, n, *rest) for r, n in zip(rngs, sizes)]
    return np.concatenate([j.result() for j in jobs], axis=0)


def worker_pool(threads):
    """A thread pool of ``threads`` workers, or None for one thread."""
    return ThreadPoolExecutor(threads) if threads > 1 else None
