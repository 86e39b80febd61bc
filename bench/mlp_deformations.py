"""Deformed MLP outputs: the cost of ``nf.sample(mlp, ..., deformation=nf.Phi4(...))``
against the undeformed run of the same network, and against the forward pass on the
quadrature nodes the deformation adds, all measured in one run.

    python -m bench.mlp_deformations           # D3 and D4, ~2 min on 2 cores
    python -m bench.mlp_deformations --quick   # ~40 s
    python -m bench.mlp_deformations --smoke   # tiny configs: checks the wiring (~20 s)

A deformed MLP run pushes the Q nodes of the quadrature rule through every network with
the B inputs (one network on B + Q points), takes the statistics on the B inputs, and
s = sum_q w_q sum_i z^(L)_i(y_q)^4 / 4! from the last layer at the nodes; it keeps three
times the block sums. Its extra cost per network should be that of the forward pass on
the nodes and little else. Target:

    (time per network deformed - undeformed) / (forward on B + Q - forward on B) <= 1

with the forward passes timed by ``bench.probes.forward_only`` (the package's
``forward_one`` into reused buffers, no statistics) in the same run. The runs are built
once and their batch loop timed (``run.accumulate``, what ``nf.sample`` does after
building the run); the deformed run's set-up, whose empirical rule computes probe
networks, is timed apart.

Configs: D3, tanh (1, 512, 512, 1), Gaussian weights, projected sampler (cost per layer
~ n (B + Q)^2), B = 4 inputs in [-1, 1], four-point statistics, lambda phi^4 on [-1, 1]
with the default empirical rule; D4, the same network with the dense sampler (cost per
layer ~ n^2 for the weights, n^2 (B + Q) for the product).

Checks before timing (exact): each network's s from the kernel equals the NumPy sum over
the package's own outputs of the same network on X u nodes to 1e-12 relative, and the
dense deformed run's free estimates equal the undeformed dense run's bit for bit.

Output: printed, and written to bench/mlp_deformations.txt and .json (``--txt``,
``--json``; with ``--smoke`` only when given).
"""

import sys
import time
from dataclasses import dataclass

import numpy as np

import nnft_fast as nf
from nnft_fast.kernels.cpu import codes
from nnft_fast.run import EnsembleRun
from nnft_fast.threads import thread_limit

from .configs import SAMPLE_SEED
from .fields import printout_main
from .harness import CallMethod, finish, fmt_rate, parser, round_robin, timed, write_json
from .machine import load_average, machine_info, print_machine
from .probes import forward_only

COUPLING = 0.1
EXACT_TOL = 1e-12
TARGET_EXTRA_VS_FORWARD = 1.0


@dataclass(frozen=True)
class MlpDeformationConfig:
    """An MLP with lambda phi^4 on its outputs over ``box`` (``nodes`` None: the default
    empirical rule)."""

    key: str
    widths: tuple
    method: str
    n_inputs: int = 4
    box: tuple = (-1.0, 1.0)
    nodes: object = None
    observables: tuple = ("two_point", "four_point")

    def network(self):
        return nf.Network(self.widths, "tanh", cw=1.5, cb=0.05)

    def inputs(self):
        return np.linspace(-0.9, 0.9, self.n_inputs)[:, None]

    def deformation(self):
        return nf.Phi4(COUPLING, self.box, nodes=self.nodes)

    def run(self, deformed=True):
        return EnsembleRun(
            self.network(),
            self.inputs(),
            SAMPLE_SEED,
            method=self.method,
            observables=self.observables,
            backend="cpu",
            deformation=self.deformation() if deformed else None,
        )


D3 = MlpDeformationConfig("D3", (1, 512, 512, 1), "projected")
D4 = MlpDeformationConfig("D4", (1, 512, 512, 1), "dense")
TINY_D3 = MlpDeformationConfig("tiny_D3", (1, 32, 1), "projected", nodes=8)
TINY_D4 = MlpDeformationConfig("tiny_D4", (1, 32, 1), "dense", nodes=8)


def accumulate_method(run, deformed, threads):
    """The run's batch loop (``run.accumulate``: what ``nf.sample`` does after building
    the run, whose set-up -- the rule's probe networks -- is timed apart) on ``threads``
    threads as a method."""
    kind = "deformed" if deformed else "undeformed"
    suffix = "all threads" if threads is None else f"{threads} thread"

    def call(n):
        with thread_limit(threads):
            run.accumulate(0, max(n, 2))

    return CallMethod(f"{kind}_t{threads or 'all'}", f"nnft_fast {kind} ({suffix})", call)


def forward_method(cfg, run, label, threads):
    """``probes.forward_only`` on the inputs ``run`` pushes through its networks."""
    a = run.kernel_args
    xt = a.forward_xt
    offsets = np.concatenate([[0], np.cumsum(a.widths[1:] * xt.shape[1])]).astype(np.int64)
    code = codes.METHOD_CODES[cfg.method]
    sink = {}

    def call(n):
        if sink.get("n", 0) < n:
            sink.update(n=n, array=np.empty(n))
        with thread_limit(threads):
            forward_only(
                code, n, a.seed, xt, *a.network_args[1:], offsets, sink["array"][:n], a.xi, a.gamma
            )

    suffix = "all threads" if threads is None else f"{threads} thread"
    return CallMethod(f"{label}_t{threads or 'all'}", f"forward only, {label} ({suffix})", call)


def exact_check(cfg, n_networks=8):
    """s against the package's outputs on X u nodes (the same networks: the deformed run
    draws each on all B + Q points), and the dense free part bit for bit."""
    run = cfg.run()
    s_kernel = run.compute(0, n_networks)[0][:, 0, -1]
    rule = run.rule
    joint = EnsembleRun(
        cfg.network(),
        np.concatenate([cfg.inputs(), rule.points]),
        SAMPLE_SEED,
        method=cfg.method,
        kind="preactivations",
    )
    nodes_out = joint.preactivations(0, n_networks)[-1][:, :, cfg.n_inputs :]
    s_numpy = (nodes_out**4 / 24.0).sum(axis=1) @ rule.weights
    s_err = float(np.max(np.abs(s_kernel - s_numpy) / np.abs(s_numpy)))
    kw = dict(seed=SAMPLE_SEED, method="dense", observables=cfg.observables, backend="cpu")
    net, x = cfg.network(), cfg.inputs()
    free = nf.sample(net, x, 64, **kw)
    deformed = nf.sample(net, x, 64, deformation=cfg.deformation(), **kw)
    layers = range(1, net.n_layers + 1)
    same = all(
        np.array_equal(
            free.four_point(l, neurons="same").value, deformed.four_point(l, neurons="same").value
        )
        for l in layers
    )
    return {
        "n_networks": n_networks,
        "s_max_rel_diff": s_err,
        "free_part_identical": bool(same),
        "ok": bool(same and s_err <= EXACT_TOL),
    }


def run_config(cfg, target, repeats):
    run = cfg.run()
    q = len(run.rule.weights)
    print(
        f"## {cfg.key}: tanh {cfg.widths}, {cfg.method}, B = {cfg.n_inputs}, lambda phi^4 on "
        f"{list(cfg.box)}: Q = {q} nodes (empirical error {run.rule.error_bound:.1e})"
    )
    exact = exact_check(cfg)
    print(
        "check: s against the NumPy sum over the same networks' outputs on the nodes: max "
        f"relative difference {exact['s_max_rel_diff']:.1e} (tolerance {EXACT_TOL:g}); dense "
        "free estimates of the deformed run "
        + ("identical" if exact["free_part_identical"] else "DIFFERENT")
        + " to the undeformed run's -> "
        + ("ok" if exact["ok"] else "FAILED")
    )
    free_run = cfg.run(deformed=False)
    setup_s = min(timed(cfg.run)[0] for _ in range(3))
    print(f"set-up of the deformed run (the rule's probe networks), best of 3: {setup_s:.2f} s")
    methods = []
    for threads in (None, 1):
        methods += [
            accumulate_method(free_run, False, threads),
            accumulate_method(run, True, threads),
            forward_method(cfg, free_run, "B inputs", threads),
            forward_method(cfg, run, "B + Q inputs", threads),
        ]
    for m in methods:
        m.warmup()
        m.calibrate(target, 2, 2, 10**7)
    round_robin(methods, repeats, f"  {cfg.key}")
    return {"cfg": cfg, "q": q, "exact": exact, "methods": methods, "setup_s": setup_s}


def ratios(result, threads):
    m = {x.key: x for x in result["methods"]}
    out = {}
    for suffix, n_threads in (("tall", threads), ("t1", 1)):
        free = 1.0 / m[f"undeformed_t{suffix[1:]}"].rate
        deformed = 1.0 / m[f"deformed_t{suffix[1:]}"].rate
        fwd_b = 1.0 / m[f"B inputs_t{suffix[1:]}"].rate
        fwd_bq = 1.0 / m[f"B + Q inputs_t{suffix[1:]}"].rate
        out[suffix] = {
            "threads": n_threads,
            "seconds_per_network_undeformed": free,
            "seconds_per_network_deformed": deformed,
            "forward_seconds_b": fwd_b,
            "forward_seconds_b_plus_q": fwd_bq,
            "deformed_vs_undeformed_time": deformed / free,
            "extra_vs_node_forward": (deformed - free) / (fwd_bq - fwd_b),
        }
    return out


def print_config(result, threads):
    cfg, r = result["cfg"], ratios(result, threads)
    m = {x.key: x for x in result["methods"]}
    print(
        f"\n| {cfg.key}: threads | undeformed networks/s | deformed networks/s | time "
        "deformed / undeformed | forward B + Q / B | extra / forward on the nodes "
        f"(target <= {TARGET_EXTRA_VS_FORWARD:g}) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for suffix, row in r.items():
        t = suffix[1:]
        print(
            f"| {row['threads']} | {fmt_rate(m[f'undeformed_t{t}'].rate)} | "
            f"{fmt_rate(m[f'deformed_t{t}'].rate)} | {row['deformed_vs_undeformed_time']:.2f} | "
            f"{row['forward_seconds_b_plus_q'] / row['forward_seconds_b']:.2f} | "
            f"{row['extra_vs_node_forward']:.2f} |"
        )
    met = r["tall"]["extra_vs_node_forward"] <= TARGET_EXTRA_VS_FORWARD
    print(
        f"\n{cfg.key}: the deformation costs {r['tall']['extra_vs_node_forward']:.2f}x the "
        f"forward pass on the nodes (one thread {r['t1']['extra_vs_node_forward']:.2f}x) -> "
        f"target <= {TARGET_EXTRA_VS_FORWARD:g}: {'met' if met else 'NOT MET'}"
    )
    return r, met


def run_all(args):
    target, repeats = (0.02, 2) if args.smoke else (0.5, 3) if args.quick else (1.5, 5)
    started = time.perf_counter()
    info = machine_info()
    threads = info["numba_threads"]
    mode = " (--smoke)" if args.smoke else " (--quick)" if args.quick else ""
    print(f"# nnft_fast deformed MLP outputs: deformed vs undeformed vs the forward pass{mode}\n")
    print_machine(info)
    print(f"timing: ~{target} s per repeat, {repeats} interleaved repeats, medians\n")
    configs = (TINY_D3, TINY_D4) if args.smoke else (D3, D4)
    figures, summary, ok = {}, {}, True
    for cfg in configs:
        result = run_config(cfg, target, repeats)
        summary[cfg.key] = print_config(result, threads)
        ok &= result["exact"]["ok"]
        figures[cfg.key] = {
            "config": {"widths": list(cfg.widths), "method": cfg.method, "B": cfg.n_inputs},
            "n_nodes": result["q"],
            "setup_seconds": result["setup_s"],
            "checks": result["exact"],
            "methods": {m.key: m.to_json() for m in result["methods"]},
            "ratios": ratios(result, threads),
        }
        print(
            f"(load average now {load_average()}; {time.perf_counter() - started:.0f} s so far)\n"
        )
    print("## summary\n")
    print(
        "| config | method | Q | time deformed / undeformed | extra / forward on the nodes "
        f"(target <= {TARGET_EXTRA_VS_FORWARD:g}) |"
    )
    print("|---|---|---:|---:|---:|")
    for cfg in configs:
        r, met = summary[cfg.key]
        print(
            f"| {cfg.key} | {cfg.method} | {figures[cfg.key]['n_nodes']} | "
            f"{r['tall']['deformed_vs_undeformed_time']:.2f} | "
            f"{r['tall']['extra_vs_node_forward']:.2f} ({'met' if met else 'NOT MET'}) |"
        )
    wall = finish(started)
    if args.json:
        write_json(args.json, "mlp_deformations", args, info, wall, configs=figures)
    return ok


def main(argv=None):
    ap = parser("bench.mlp_deformations", __doc__, quick="short run (~40 s)")
    return printout_main(ap, argv, lambda _: "mlp_deformations", run_all)


if __name__ == "__main__":
    sys.exit(main())
