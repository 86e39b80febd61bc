"""JAX (CPU) dense baseline: what a competent JAX user would write, and neural-tangents.

``JaxDenseEnsemble``: float64 (``jax_enable_x64``); network e gets the key
``fold_in(PRNGKey(seed), e)``, split into one key per layer for the weights and one for the
biases. Weights are explicit: ``jax.random.normal`` (entries of variance cw/n_in) or
``jax.random.orthogonal(key, n_out, m=n_in)`` (QR of a Gaussian with Mezzadri's sign fix;
an n_out x n_in Stiefel frame, orthonormal columns when n_out >= n_in), scaled by
sqrt(cw * max(1, n_out/n_in)) (docs/conventions.md#weights). One network's forward pass and
statistics are written for a single key, ``jax.vmap`` maps it over a chunk of network indices
(``jax.lax.map`` for orthogonal weights: see ``network_statistics_fn``) and ``jax.jit``
compiles the whole. Every layer's preactivations z (n x B) are reduced to
nnft_fast's per-network statistics vector [G | Q | GG] (docs/estimators.md, ``MomentLayout``
order; see ``bench.torch_baseline``), accumulated in an
``nnft_fast.accumulators.MomentAccumulator``; ``as_ensemble`` gives an ``nf.Ensemble``
with the project's estimators and jackknife errors.

``NeuralTangentsMC``: neural-tangents' ``monte_carlo_kernel_fn`` on the ``stax`` network
of the same widths ('ntk' parameterisation, W_std = sqrt(cw), b_std = sqrt(cb) or no
bias): the Monte-Carlo NNGP (= K of the output layer, averaged over output neurons) and
the mean NTK with lambda_W = C_W, lambda_b = C_b (docs/conventions.md#ntk). It yields only means
(no four-point, no error bars), for the output layer only.
"""

import importlib

import numpy as np

from .dense import DenseEnsemble, statistic_tables


def jax_x64():
    """jax, with float64 enabled (ImportError without JAX)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def network_statistics_fn(widths, X, init, cw, cb, activation, four_point):
    """jit(vmap) of (base key, network indices (c,)) -> statistics (c, L, n_stat)."""
    jax = jax_x64()
    import jax.numpy as jnp

    acts = {"relu": jax.nn.relu, "tanh": jnp.tanh, "linear": lambda z: z}
    act = acts[activation]
    xt = jnp.asarray(np.asarray(X, dtype=np.float64).T)  # (n_0, B)
    pair_a, pair_b, quad_p1, quad_p2, gg_1, gg_2 = statistic_tables(X.shape[0], four_point)
    n_layers = len(widths) - 1

    def weights(key, n_out, n_in):
        if init == "gaussian":
            return jax.random.normal(key, (n_out, n_in)) * jnp.sqrt(cw / n_in)
        scale = jnp.sqrt(cw * max(1.0, n_out / n_in))
        return scale * jax.random.orthogonal(key, n_out, m=n_in)

    def layer_statistics(z):  # z (n, B)
        y = z[:, pair_a] * z[:, pair_b]  # (n, P) pair products
        g = y.mean(axis=0)
        if not four_point:
            return g
        m = y.T @ y / z.shape[0]  # <z_a z_b z_c z_d>
        return jnp.concatenate([g, m[quad_p1, quad_p2], g[gg_1] * g[gg_2]])

    def one_network(key):
        keys = jax.random.split(key, 2 * n_layers)
        s, out = xt, []
        for l in range(n_layers):
            n_in, n_out = widths[l], widths[l + 1]
            z = weights(keys[2 * l], n_out, n_in) @ s
            if cb > 0.0:
                z = z + jnp.sqrt(cb) * jax.random.normal(keys[2 * l + 1], (n_out, 1))
            out.append(layer_statistics(z))
            s = act(z)
        return jnp.stack(out)

    def chunk(base, indices):
        keys = jax.vmap(jax.random.fold_in, (None, 0))(base, indices)
        if init == "orthogonal":
            # lax.map, not vmap: jaxlib 0.10's batched QR (ParallelBatchMap) waits for
            # sub-tasks on the XLA CPU pool from inside it; with two batched QRs of
            # different layers scheduled at once on a 2-thread pool both workers wait and
            # the call never returns (seen with gdb). One network at a time, each layer's
            # QR is an unbatched LAPACK call.
            return jax.lax.map(one_network, keys)
        return jax.vmap(one_network)(keys)

    return jax.jit(chunk)


class JaxDenseEnsemble(DenseEnsemble):
    """Streams dense networks drawn by JAX into a ``MomentAccumulator``.

    ``run(n)`` rounds n up to whole chunks (one compiled shape) and returns the number of
    networks it drew.
    """

    name = "jax-dense"
    build_fn = staticmethod(network_statistics_fn)  # jit of (base key, indices (chunk,))

    def __init__(self, widths, X, **kw):
        super().__init__(widths, X, **kw)
        jax = jax_x64()
        self.fn = self.build_fn(
            self.widths, self.X, self.init, self.cw, self.cb, self.activation, self.four_point
        )
        self.base_key = jax.random.PRNGKey(int(self.seed))
        self._scratch_index = 1 << 40  # networks drawn but not kept (pilots)

    def _chunk(self, first):
        indices = np.arange(first, first + self.chunk, dtype=np.int64)
        return np.asarray(self.fn(self.base_key, indices))  # waits for the result

    def run(self, n, keep=True):
        n_chunks = -(-n // self.chunk)
        for _ in range(n_chunks):
            if keep:
                self.accumulator.add(self._chunk(self.next_network), self.next_network)
                self.next_network += self.chunk
            else:
                self._chunk(self._scratch_index)
                self._scratch_index += self.chunk
        return n_chunks * self.chunk


# ----------------------------------------------------------------------------------------
# neural-tangents
# ----------------------------------------------------------------------------------------
def neural_tangents_status():
    """None if neural-tangents imports and runs with this JAX, else the reason.

    (neural-tangents 0.6.5, its latest release, imports ``jax.core.Jaxpr``, which JAX
    0.10 no longer has: checked with jax 0.10.2, so on current JAX it is skipped.)
    """
    try:
        jax = jax_x64()
    except ImportError:
        return "jax not installed (pip install jax neural-tangents)"
    try:
        importlib.import_module("neural_tangents")
    except ModuleNotFoundError as e:
        if e.name != "neural_tangents":
            return f"neural-tangents does not import ({e})"
        return (
            "neural-tangents not installed (pip install neural-tangents; its latest "
            "release, 0.6.5, needs an older JAX: with jax 0.10.2 its import fails on "
            "jax.core.Jaxpr)"
        )
    except ImportError as e:
        return f"neural-tangents does not import with jax {jax.__version__} ({e})"
    try:  # an incompatibility can also show up only when a kernel is computed
        from neural_tangents import monte_carlo_kernel_fn, stax

        init_fn, apply_fn, _ = stax.serial(stax.Dense(2), stax.Relu(), stax.Dense(1))
        fn = monte_carlo_kernel_fn(init_fn, apply_fn, jax.random.PRNGKey(0), 2)
        np.asarray(fn(np.ones((2, 3)), None, "nngp"))
    except Exception as e:
        return f"neural-tangents does not work with jax {jax.__version__}: {type(e).__name__}: {e}"
    return None


class NeuralTangentsMC(DenseEnsemble):
    """Monte-Carlo NNGP and mean NTK of the output layer by neural-tangents.

    ``run(n)`` draws n networks (rounded up to whole batches of ``chunk``) through a
    ``monte_carlo_kernel_fn`` built with a fresh key, so repeats are independent, and
    keeps the sums; ``mean("nngp")`` / ``mean("ntk")`` average everything kept. Building
    the function each call is what a user estimating a kernel once would do; it may
    re-trace. (neural-tangents 0.6.5 does not import with JAX >= 0.5, so this path is
    skipped there, see ``neural_tangents_status``.)
    """

    def __init__(
        self, widths, X, *, cw=2.0, cb=0.0, activation="relu", seed=0, batch=None, init="gaussian"
    ):
        super().__init__(
            widths,
            X,
            init=init,
            cw=cw,
            cb=cb,
            activation=activation,
            four_point=False,
            seed=seed,
            chunk=batch,
        )
        jax = jax_x64()
        from neural_tangents import monte_carlo_kernel_fn, stax

        acts = {"relu": stax.Relu, "erf": stax.Erf, "linear": stax.Identity}
        b_std = float(np.sqrt(cb)) if cb > 0 else None
        layers = []
        for l, n_out in enumerate(widths[1:]):
            if l:
                layers.append(acts[activation]())
            layers.append(
                stax.Dense(
                    int(n_out), W_std=float(np.sqrt(cw)), b_std=b_std, parameterization="ntk"
                )
            )
        self.init_fn, self.apply_fn, _ = stax.serial(*layers)
        self._mc = monte_carlo_kernel_fn
        self.key = jax.random.PRNGKey(int(seed))
        self.sums = {"nngp": 0.0, "ntk": 0.0}

    def run(self, n, keep=True):
        import jax

        n = self.whole(n)
        self.key, sub = jax.random.split(self.key)
        fn = self._mc(self.init_fn, self.apply_fn, sub, n, batch_size=self.chunk, trace_axes=(-1,))
        nngp, ntk = (np.asarray(v) for v in fn(self.X, None, ("nngp", "ntk")))
        if keep:
            self.sums["nngp"] = self.sums["nngp"] + n * nngp
            self.sums["ntk"] = self.sums["ntk"] + n * ntk
            self.next_network += n
        return n

    def mean(self, name):
        return self.sums[name] / self.next_network

    def as_ensemble(self):
        return None  # means of the output layer only: no per-layer moments
