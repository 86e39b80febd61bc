"""NTK statistics at R1: nnft_fast (projected, dense) against a JAX ensemble loop.

    python -m bench.ntk_compare            # ~3 min
    python -m bench.ntk_compare --quick    # ~1 min
    python -m bench.ntk_compare --smoke    # a tiny config, a few networks: checks the wiring

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

Before timing, the mean NTK of both is compared by z-scores (bench.agreement.z_own).
Timings are medians of interleaved repeats in one process (bench.harness); only their
ratios mean anything on a shared machine.
"""

import sys
import time

import numpy as np

import nnft_fast as nf

from .agreement import z_own
from .configs import R1, TINY
from .harness import CallMethod, finish, fmt_rate, parser, round_robin, timed, write_json
from .machine import machine_info, print_machine

READOUTS = 2
LAMBDA_B = 1.0
LAMBDA_W = 1.0
JAX_BATCH = 2
BASELINE = "JAX jacrev + vmap + jit (baseline)"


def jax_ntk_function(cfg, x):
    """jit(vmap) of keys (batch,) -> per-layer NTKs (batch, L, r, r, B, B), JAX float64."""
    from .jax_baseline import jax_x64

    jax = jax_x64()
    import jax.numpy as jnp

    widths, cw, n_layers = cfg.widths, cfg.cw, cfg.n_layers
    xj = jnp.asarray(x)

    def init(key):
        keys = jax.random.split(key, n_layers)
        return [
            (
                jax.random.normal(k, (widths[l + 1], widths[l])) * jnp.sqrt(cw / widths[l]),
                jnp.zeros(widths[l + 1]),
            )
            for l, k in enumerate(keys)
        ]

    def readouts(params, layer):
        s = xj.T  # (n_0, B)
        for l in range(layer):
            w, b = params[l]
            z = w @ s + b[:, None]
            s = jax.nn.relu(z)
        return z[:READOUTS]  # (r, B)

    def ntk(key):
        params = init(key)
        out = []
        for layer in range(1, n_layers + 1):
            sub = params[:layer]
            jac = jax.jacrev(readouts)(sub, layer)  # leaves (r, B, *param shape)
            h = 0.0
            for l, (jw, jb) in enumerate(jac):
                h = h + (LAMBDA_W / widths[l]) * jnp.einsum("iajk,lbjk->ilab", jw, jw)
                h = h + LAMBDA_B * jnp.einsum("iaj,lbj->ilab", jb, jb)
            out.append(h)
        return jnp.stack(out)

    return jax.jit(jax.vmap(ntk))


def run_jax(fn, n, first):
    import jax

    keys = jax.random.split(jax.random.PRNGKey(first), n)
    hs = [np.asarray(fn(keys[i : i + JAX_BATCH])) for i in range(0, n, JAX_BATCH)]
    return np.concatenate(hs)


def theta_from_samples(h):
    """Theta (L, B, B) and its standard error from per-network H (N, L, r, r, B, B)."""
    diag = np.einsum("nliiab->nlab", h) / h.shape[2]
    return diag.mean(axis=0), diag.std(axis=0, ddof=1) / np.sqrt(diag.shape[0])


def main(argv=None):
    args = parser("bench.ntk_compare", __doc__, quick="short run (~1 min)").parse_args(argv)
    cfg = TINY if args.smoke else R1
    repeats = 1 if args.smoke else 3 if args.quick else 5
    small = args.quick or args.smoke
    started = time.perf_counter()
    info = machine_info(optional=("jax",))
    net, x = cfg.network(), cfg.inputs()
    obs = ("two_point", "four_point", "ntk")
    print(
        f"# NTK statistics, {cfg.key} ({cfg.describe()}; lambda_b = {LAMBDA_B}, "
        f"lambda_W = {LAMBDA_W}, r = {READOUTS})\n"
    )
    print_machine(info)
    try:
        fn = jax_ntk_function(cfg, x)
    except ImportError:
        print("JAX is not installed (pip install jax): the baseline is skipped.")
        fn = None

    def nf_method(method):
        return lambda n: nf.sample(net, x, n, seed=1, method=method, observables=obs, backend="cpu")

    sizes = (20, 2, 4) if args.smoke else (600, 16, 8) if args.quick else (2000, 48, 16)
    methods = [
        CallMethod("nnft_projected", "nnft_fast projected", nf_method("projected"), n=sizes[0]),
        CallMethod("nnft_dense", "nnft_fast dense", nf_method("dense"), n=sizes[1]),
    ]
    if fn is not None:
        dt, _ = timed(run_jax, fn, JAX_BATCH, 0)
        print(f"JAX compile + first batch: {dt:.1f} s")
        methods.append(CallMethod("jax", BASELINE, lambda n: run_jax(fn, n, 1), n=sizes[2]))
    for m in methods:  # warm up: one whole repeat each
        m.warmup_fn = lambda m=m: m.fn(m.n_per_repeat)
        m.warmup()

    agree = None
    if fn is not None:  # agreement of the mean NTK before timing
        h = run_jax(fn, 200 if small else 400, 2)
        theta_j, err_j = theta_from_samples(h)
        n_nf = 500 if args.smoke else 20_000
        ens = nf.sample(net, x, n_nf, seed=3, observables=("two_point", "ntk"), backend="cpu")
        # layer 1 is deterministic in both: rounding sets the scale there (the floor)
        agree = [
            float(
                np.max(
                    np.abs(
                        z_own(
                            ens.ntk(l).value,
                            ens.ntk(l).error,
                            theta_j[l - 1],
                            err_j[l - 1],
                            rel_floor=1e-12,
                        )
                    )
                )
            )
            for l in range(1, cfg.n_layers + 1)
        ]
        print(
            f"agreement, mean NTK JAX ({h.shape[0]} networks) vs nnft_fast ({n_nf:,}): "
            f"max |z| per layer {np.round(agree, 2).tolist()} -> "
            f"{'consistent' if max(agree) < 4.5 else 'INCONSISTENT'}\n"
        )

    round_robin(methods, repeats, "timing")
    base = methods[2] if fn is not None else None
    print("\n| method | networks/s | ratio vs JAX |")
    print("|---|---:|---:|")
    for m in methods:
        ratio = m.rate / base.rate if base else float("nan")
        print(f"| {m.label} | {fmt_rate(m.rate)} | {ratio:,.1f}x |")
    if base:
        proj, dense = methods[0].rate / base.rate, methods[1].rate / base.rate
        print(
            f"\ntargets (issue 5): projected >= 20x JAX: {proj:.1f}x "
            f"({'met' if proj >= 20 else 'NOT met'}); dense >= 2x JAX: {dense:.1f}x "
            f"({'met' if dense >= 2 else 'NOT met'})"
        )
    elapsed = finish(started)
    write_json(
        args.json,
        "ntk_compare",
        args,
        info,
        elapsed,
        methods={m.key: m.to_json() for m in methods},
        agreement_max_abs_z=agree,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
