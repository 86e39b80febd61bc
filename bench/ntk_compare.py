"""NTK statistics at R1: nnft_fast (projected, dense) against a JAX ensemble loop.

    python -m bench.ntk_compare            # ~3 min
    python -m bench.ntk_compare --quick    # ~1 min

R1 (docs/performance.md#r1): n_0 = 64, eight ReLU layers of width 512, B = 4 inputs, C_W = 2,
C_b = 0, Gaussian weights; lambda_b = lambda_W = 1, two readout neurons per layer.

Baseline, written the way a competent JAX user would (needs ``pip install jax``; skipped
with a message when missing): float64 (``jax_enable_x64``), parameters drawn with
``jax.random``, for every layer l the Jacobian of the readouts z^(l)_{i<2} with respect
to the parameters of layers <= l by ``jax.jacrev``, contracted into H^(l) with the
lambda_b and lambda_W / n_{l-1} weights of docs/conventions.md#ntk, ``jax.vmap`` over a small
batch of networks and ``jax.jit`` over the whole; the per-network H are then reduced to Theta.
nnft_fast: ``nf.sample(..., observables=("two_point", "four_point", "ntk"))``, which also
accumulates A, B, D, F and the moments (more work than the baseline).

Before timing, the mean NTK of both is compared by z-scores. Timings are medians of
interleaved repeats in one process; only their ratios mean anything on a shared machine.
"""
import argparse
import statistics
import sys
import time

import numpy as np

import nnft_fast as nf

WIDTHS = (64,) + (512,) * 8
B = 4
CW = 2.0
READOUTS = 2
LAMBDA_B = 1.0
LAMBDA_W = 1.0
X_SEED = 20240601
JAX_BATCH = 2


def r1_network():
    return nf.Network(WIDTHS, "relu", "gaussian", cw=CW, cb=0.0)


def inputs():
    return np.random.default_rng(X_SEED).standard_normal((B, WIDTHS[0]))


def jax_ntk_function(x):
    """jit(vmap) of keys (batch,) -> per-layer NTKs (batch, L, r, r, B, B), JAX float64."""
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)
    n_layers = len(WIDTHS) - 1
    xj = jnp.asarray(x)

    def init(key):
        keys = jax.random.split(key, n_layers)
        return [(jax.random.normal(k, (WIDTHS[l + 1], WIDTHS[l])) * jnp.sqrt(CW / WIDTHS[l]),
                 jnp.zeros(WIDTHS[l + 1])) for l, k in enumerate(keys)]

    def readouts(params, layer):
        s = xj.T                                   # (n_0, B)
        for l in range(layer):
            w, b = params[l]
            z = w @ s + b[:, None]
            s = jax.nn.relu(z)
        return z[:READOUTS]                        # (r, B)

    def ntk(key):
        params = init(key)
        out = []
        for layer in range(1, n_layers + 1):
            sub = params[:layer]
            jac = jax.jacrev(readouts)(sub, layer)   # leaves (r, B, *param shape)
            h = 0.0
            for l, (jw, jb) in enumerate(jac):
                h = h + (LAMBDA_W / WIDTHS[l]) * jnp.einsum("iajk,lbjk->ilab", jw, jw)
                h = h + LAMBDA_B * jnp.einsum("iaj,lbj->ilab", jb, jb)
            out.append(h)
        return jnp.stack(out)

    return jax.jit(jax.vmap(ntk))


def run_jax(fn, n, first):
    import jax
    keys = jax.random.split(jax.random.PRNGKey(first), n)
    hs = [np.asarray(fn(keys[i:i + JAX_BATCH])) for i in range(0, n, JAX_BATCH)]
    return np.concatenate(hs)


def theta_from_samples(h):
    """Theta (L, B, B) and its standard error from per-network H (N, L, r, r, B, B)."""
    diag = np.einsum("nliiab->nlab", h) / h.shape[2]
    return diag.mean(axis=0), diag.std(axis=0, ddof=1) / np.sqrt(diag.shape[0])


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m bench.ntk_compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short run (~1 min)")
    args = ap.parse_args(argv)
    repeats = 3 if args.quick else 5
    net, x = r1_network(), inputs()
    obs = ("two_point", "four_point", "ntk")
    print("# NTK statistics, R1 (n_0=64, 8 x 512 ReLU, B=4, lambda_b=lambda_W=1, r=2)\n")
    try:
        fn = jax_ntk_function(x)
    except ImportError:
        print("JAX is not installed (pip install jax): the baseline is skipped.")
        fn = None

    def nf_method(method, n):
        return lambda: nf.sample(net, x, n, seed=1, method=method, observables=obs,
                                   backend="cpu")

    n_proj = 600 if args.quick else 2000
    n_dense = 16 if args.quick else 48
    n_jax = 8 if args.quick else 16
    methods = {"nnft_fast projected": (nf_method("projected", n_proj), n_proj),
               "nnft_fast dense": (nf_method("dense", n_dense), n_dense)}
    if fn is not None:
        t = time.perf_counter()
        run_jax(fn, JAX_BATCH, 0)
        print(f"JAX compile + first batch: {time.perf_counter() - t:.1f} s")
        methods["JAX jacrev + vmap + jit (baseline)"] = (lambda: run_jax(fn, n_jax, 1), n_jax)
    for f, _ in methods.values():  # warm up
        f()

    if fn is not None:  # agreement of the mean NTK before timing
        h = run_jax(fn, 200 if args.quick else 400, 2)
        theta_j, err_j = theta_from_samples(h)
        ens = nf.sample(net, x, 20_000, seed=3, observables=("two_point", "ntk"),
                        backend="cpu")
        z = []
        for layer in range(1, len(WIDTHS)):
            est = ens.ntk(layer)
            # layer 1 is deterministic in both: rounding sets the scale there
            scale = np.maximum(np.hypot(est.error, err_j[layer - 1]),
                               1e-12 * np.abs(est.value))
            z.append(float(np.max(np.abs(est.value - theta_j[layer - 1]) / scale)))
        print(f"agreement, mean NTK JAX ({h.shape[0]} networks) vs nnft_fast (20,000): "
              f"max |z| per layer {np.round(z, 2).tolist()} -> "
              f"{'consistent' if max(z) < 4.5 else 'INCONSISTENT'}\n")

    times = {name: [] for name in methods}
    for _ in range(repeats):
        for name, (f, n) in methods.items():
            t = time.perf_counter()
            f()
            times[name].append((time.perf_counter() - t) / n)
    base = "JAX jacrev + vmap + jit (baseline)"
    print("| method | networks/s | ratio vs JAX |")
    print("|---|---:|---:|")
    for name in methods:
        rate = 1.0 / statistics.median(times[name])
        ratio = (statistics.median(times[base]) / statistics.median(times[name])
                 if base in times else float("nan"))
        print(f"| {name} | {rate:,.1f} | {ratio:,.1f}x |")
    if base in times:
        proj = statistics.median(times[base]) / statistics.median(times["nnft_fast projected"])
        dense = statistics.median(times[base]) / statistics.median(times["nnft_fast dense"])
        print(f"\ntargets (issue 5): projected >= 20x JAX: {proj:.1f}x "
              f"({'met' if proj >= 20 else 'NOT met'}); dense >= 2x JAX: {dense:.1f}x "
              f"({'met' if dense >= 2 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
