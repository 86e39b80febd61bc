"""JAX (CPU) projected baseline: nnft_fast's exact low-rank law of every layer
(docs/projected-sampler.md; the law is spelled out in bench/numpy_projected.py) written
the way a competent JAX user would: float64, one ``jax.jit`` of a whole chunk of
networks written with batched arrays (c, n, B):

    gram = S^T S                (c, B, B)
    L    = jnp.linalg.cholesky(gram), batched; where some factor is NaN (a singular Gram
           matrix) ``lax.cond`` takes R = diag(sqrt(w)) V^T from jnp.linalg.eigh instead
    gaussian    z = F L^T,  F = jax.random.normal(key, (c, n_out, B)) sqrt(cw / n_in)
    orthogonal  z = s H[:, :n_out] L^T,  H (c, max(n_out, n_in), B) Haar frames:
                jnp.linalg.qr of a Gaussian (per network, see below), columns of Q times
                sign(diag R)

A layer with n_in <= B draws explicit weights (as many normals). The chunk's key is
``fold_in(PRNGKey(seed), its first network)``, split into one key per layer for the
weights and one for the biases. The statistics are bench/numpy_projected.py's
``layer_statistics`` with ``xp = jax.numpy``, into nnft_fast's ``MomentAccumulator``
(bench/jax_baseline.py's ``JaxDenseEnsemble`` bookkeeping, whole chunks).

The QR (Haar frames) and the rare ``eigh`` fallback go through ``lax.map``, one
unbatched LAPACK call per network inside the jit, as bench/jax_baseline.py does for its
orthogonal weights: with jaxlib 0.10.2 the batched ``jnp.linalg.qr`` on a 2-thread XLA
CPU pool hung in the first call (batched QR waits for sub-tasks on the pool from inside
it), even with each layer's Gaussian passed through ``lax.optimization_barrier`` with the
layer's factor so that no two factorisations could be scheduled at once. The barrier is
kept (it costs nothing). Cholesky and every product stay batched over the chunk. JAX's
CPU thread pool is sized to the usable cores; there is no supported setting.
"""

import numpy as np

from .jax_baseline import JaxDenseEnsemble, jax_x64
from .numpy_projected import layer_statistics, statistic_tables
from .projected import projected_chunk


def chunk_statistics_fn(widths, X, init, cw, cb, activation, four_point):
    """jit of (base key, network indices (c,)) -> statistics (c, L, n_stat) of c projected
    networks drawn from the key ``fold_in(base, indices[0])``."""
    jax = jax_x64()
    import jax.numpy as jnp
    from jax import lax

    acts = {"relu": jax.nn.relu, "tanh": jnp.tanh, "linear": lambda z: z}
    act = acts[activation]
    xt = jnp.asarray(np.asarray(X, dtype=np.float64).T)  # (n_0, B)
    tables = statistic_tables(X.shape[0], four_point)
    n_layers = len(widths) - 1

    def frame(g):  # the Haar frame of one Gaussian g (m, k)
        q, r = jnp.linalg.qr(g)
        return q * jnp.sign(jnp.diagonal(r))[None, :]

    def frames(g):  # (c, m, k): one unbatched QR per network (module docstring)
        return lax.map(frame, g)

    def eigh_one(gram):
        w, v = jnp.linalg.eigh(gram)
        return jnp.sqrt(jnp.clip(w, 0.0))[:, None] * v.T

    def eigh_factor(gram):
        return lax.map(eigh_one, gram)

    def gram_factor(s):
        gram = jnp.swapaxes(s, -1, -2) @ s
        r = jnp.swapaxes(jnp.linalg.cholesky(gram), -1, -2)
        return lax.cond(jnp.isnan(r).any(), eigh_factor, lambda _: r, gram)

    def explicit(key, s, n_out):  # n_in <= B: explicit weights
        c, n_in, _ = s.shape
        if init == "gaussian":
            return jax.random.normal(key, (c, n_out, n_in)) * jnp.sqrt(cw / n_in) @ s
        g, s = lax.optimization_barrier((jax.random.normal(key, (c, max(n_out, n_in), n_in)), s))
        q = frames(g) if n_out >= n_in else jnp.swapaxes(frames(g), -1, -2)
        return jnp.sqrt(cw * max(1.0, n_out / n_in)) * q @ s

    def layer(key, s, n_out):
        c, n_in, nb = s.shape
        if n_in <= nb:
            return explicit(key, s, n_out)
        r = gram_factor(s)
        if init == "gaussian":
            f = jax.random.normal(key, (c, n_out, nb)) * jnp.sqrt(cw / n_in)
        else:
            g, r = lax.optimization_barrier((jax.random.normal(key, (c, max(n_out, n_in), nb)), r))
            f = jnp.sqrt(cw * max(1.0, n_out / n_in)) * frames(g)[:, :n_out]
        return f @ r

    def chunk(base, indices):
        keys = jax.random.split(jax.random.fold_in(base, indices[0]), 2 * n_layers)
        c = indices.shape[0]
        s, out = jnp.broadcast_to(xt, (c,) + xt.shape), []
        for l in range(n_layers):
            n_out = widths[l + 1]
            z = layer(keys[2 * l], s, n_out)
            if cb > 0.0:
                z = z + jnp.sqrt(cb) * jax.random.normal(keys[2 * l + 1], (c, n_out, 1))
            out.append(layer_statistics(z, tables, four_point, jnp))
            s = act(z)
        return jnp.stack(out, axis=1)

    return jax.jit(chunk)


class JaxProjectedEnsemble(JaxDenseEnsemble):
    """Streams projected networks drawn by JAX into a ``MomentAccumulator`` (whole chunks,
    one compiled shape; chunk default ``projected_chunk``)."""

    name = "jax-projected"
    algorithm = "projected"
    build_fn = staticmethod(chunk_statistics_fn)

    def __init__(self, widths, X, *, chunk=None, **kw):
        super().__init__(widths, X, chunk=chunk or projected_chunk(widths, len(X)), **kw)
