"""Deformed cos-net fields: the cost of ``nf.sample(..., deformation=nf.Phi4(...))`` against
the undeformed run of the same field, and against the cosines the deformation adds, all
measured in one run.

    python -m bench.deformations           # D1 and D2, ~3 min on 2 cores
    python -m bench.deformations --quick   # ~1 min
    python -m bench.deformations --smoke   # tiny configs: checks the wiring (~20 s)

A deformed run evaluates every network's field on the Q nodes of the quadrature rule
besides the B points (s = sum_q w_q phi(y_q)^4 / 4!) and keeps three times the block sums
([x | s | s x | w | w x | w^2], nnft_fast/deformed_accumulator.py). Its extra cost per
network should be the N Q cosines of the field on the nodes and little else. Target:

    (time per network deformed - undeformed) / (N Q cosines at the cos_sin_turn floor) <= 1

with the floor of ``bench.fields`` (``kernels.cpu.rng.cos_turns`` in a small @njit
loop, one thread, times the Numba threads), measured in the same run.

Configs (``DEFORMATIONS``): the field of bench.fields (N = 1000, m = 1, Lambda = 10,
alpha = 0, Gaussian amplitudes, B = 16 points uniform in the box) with lambda phi^4 on that
box and the rule's default nodes (quadrature error below 1e-10 relative):
D1: d = 1, box [-2, 2], two- and four-point statistics; D2: d = 2, box [-1/2, 1/2]^2,
two-point only.

Methods per config, each warmed up outside the timing, sized to ~``target`` seconds per
repeat, repeats interleaved round-robin, medians (bench.harness): ``nf.sample`` undeformed
and deformed (coupling COUPLING), all Numba threads and threads=1; the floor.

Checks before timing (exact): each network's s from the kernel equals
sum_q w_q phi(y_q)^4 / 4! of the same network's field on the nodes (``FieldCpuEngine.
fields`` on the rule's points) to 1e-12 relative, and the deformed run's free estimates
equal the undeformed run's bit for bit (the same networks).

Output: printed, and written to bench/deformations.txt and bench/deformations.json
(``--txt``, ``--json``; with ``--smoke`` only when given).
"""

import sys
import time
from dataclasses import dataclass

import numpy as np

import nnft_fast as nf
from nnft_fast.field_run import FieldRun
from nnft_fast.threads import thread_limit

from .configs import SAMPLE_SEED, TWO_FOUR, FieldConfig
from .fields import NnftFieldMethod, floor_methods, printout_main
from .harness import finish, fmt_rate, parser, round_robin, write_json
from .machine import load_average, machine_info, print_machine

COUPLING = 0.1
EXACT_TOL = 1e-12
TARGET_EXTRA_VS_FLOOR = 1.0


@dataclass(frozen=True, eq=False)
class DeformationConfig:
    """A field config (``bench.configs.FieldConfig``) with lambda phi^4 on ``box``
    (``nodes``: None for the rule's default)."""

    key: str
    field: FieldConfig
    box: tuple
    nodes: object = None

    def deformation(self, coupling=COUPLING):
        return nf.Phi4(coupling, self.box, nodes=self.nodes)

    def rule(self):
        return self.deformation().rule(self.field.network())

    @property
    def n_nodes(self):
        return int(self.rule().points.shape[0])

    @property
    def node_cosines(self):
        """N Q: the cosines the deformation adds per network."""
        return self.field.width * self.n_nodes

    def describe(self):
        rule = self.rule()
        return (
            f"{self.field.describe()}; lambda phi^4 on {np.asarray(rule.box).tolist()}, "
            f"Q = {self.n_nodes} nodes {[int(n) for n in rule.nodes]}"
        )


def _field(key, dim, width, n_points, observables, box, cutoff=10.0):
    return FieldConfig(
        key, f"{key} field", dim, width, n_points, observables, cutoff=cutoff, box=box
    )


D1 = DeformationConfig("D1", _field("D1", 1, 1000, 16, TWO_FOUR, 4.0), (-2.0, 2.0))
D2 = DeformationConfig("D2", _field("D2", 2, 1000, 16, ("two_point",), 1.0), (-0.5, 0.5))
DEFORMATIONS = (D1, D2)
TINY_D1 = DeformationConfig("tiny_D1", _field("tiny_D1", 1, 64, 4, TWO_FOUR, 2.0), (-1.0, 1.0))
TINY_D2 = DeformationConfig(
    "tiny_D2", _field("tiny_D2", 2, 64, 4, ("two_point",), 1.0), (-0.5, 0.5), (6, 6)
)


class DeformedFieldMethod(NnftFieldMethod):
    """``nf.sample(backend="cpu", deformation=...)`` of a deformation config."""

    def __init__(self, dcfg, threads=None):
        suffix = "all threads" if threads is None else f"{threads} thread"
        super().__init__(
            dcfg.field,
            threads,
            key=f"deformed_t{threads or 'all'}",
            label=f"nnft_fast deformed ({suffix})",
        )
        self.deformation = dcfg.deformation()

    def _sample(self, n, seed, first):
        with thread_limit(self.threads):
            return nf.sample(
                self.network,
                self.x,
                n,
                seed=seed,
                observables=self.observables,
                first_network=first,
                backend="cpu",
                deformation=self.deformation,
            )


# --------------------------------------------------------------------------------------
# Checks before timing
# --------------------------------------------------------------------------------------
def exact_check(dcfg, n_networks=16):
    """s of every network against the field on the nodes; free part against the
    undeformed run."""
    cfg, net, x = dcfg.field, dcfg.field.network(), dcfg.field.inputs()
    deformation, rule = dcfg.deformation(), dcfg.rule()
    run = FieldRun(net, x, SAMPLE_SEED, observables=cfg.observables, deformation=deformation)
    s_kernel = run.engine.compute(0, n_networks)[0][:, 0, -1].copy()
    nodes = FieldRun(net, rule.points, SAMPLE_SEED, observables=("two_point",))
    phi = nodes.engine.fields(0, n_networks)[:, 0, :]
    s_numpy = (phi**4 / 24.0) @ rule.weights
    s_err = float(np.max(np.abs(s_kernel - s_numpy) / np.abs(s_numpy)))
    kw = dict(seed=SAMPLE_SEED, observables=cfg.observables, backend="cpu")
    free = nf.sample(net, x, 4 * n_networks, **kw)
    deformed = nf.sample(net, x, 4 * n_networks, deformation=deformation, **kw)
    same = bool(np.array_equal(free.two_point().value, deformed.two_point().value))
    if "four_point" in cfg.observables:
        same &= bool(np.array_equal(free.four_point().value, deformed.four_point().value))
    return {
        "n_networks": n_networks,
        "s_max_rel_diff": s_err,
        "free_part_identical": same,
        "ok": bool(s_err <= EXACT_TOL and same),
    }


# --------------------------------------------------------------------------------------
# One config
# --------------------------------------------------------------------------------------
def run_config(dcfg, target, repeats):
    print(f"## {dcfg.key}: {dcfg.describe()}")
    cfg = dcfg.field
    print(
        f"cosines per network: N B = {cfg.cosines_per_network:,} on the points, "
        f"N Q = {dcfg.node_cosines:,} on the nodes"
    )
    exact = exact_check(dcfg)
    print(
        f"check (exact, {exact['n_networks']} networks): s of the kernel against "
        f"sum_q w_q phi(y_q)^4 / 4!: max relative difference {exact['s_max_rel_diff']:.1e} "
        f"(tolerance {EXACT_TOL:g}); free estimates of the deformed run "
        + ("identical" if exact["free_part_identical"] else "DIFFERENT")
        + " to the undeformed run's -> "
        + ("ok" if exact["ok"] else "FAILED")
    )
    methods = [
        NnftFieldMethod(cfg, key="free_tall", label="nnft_fast undeformed (all threads)"),
        DeformedFieldMethod(dcfg),
        NnftFieldMethod(cfg, threads=1, key="free_t1", label="nnft_fast undeformed (1 thread)"),
        DeformedFieldMethod(dcfg, threads=1),
    ]
    floor = floor_methods()[0]
    for m in methods + [floor]:
        m.warmup()
    for m in methods:
        m.calibrate(target, 2, 1, 10**7)
    floor.calibrate(target / 2, 4, 1, 10**6)
    print("per repeat: " + ", ".join(f"{m.label} {m.n_per_repeat:,}" for m in methods))
    round_robin(methods + [floor], repeats, f"  {dcfg.key}")
    return {"dcfg": dcfg, "exact": exact, "methods": methods, "floor": floor}


def ratios(result, threads):
    """Per network (wall seconds): deformed, undeformed, their difference, and N Q (N B)
    cosines at the floor, for all threads and one thread."""
    m = {x.key: x for x in result["methods"]}
    dcfg, floor = result["dcfg"], result["floor"]
    out = {}
    for suffix, n_threads in (("tall", threads), ("t1", 1)):
        free, deformed = 1.0 / m[f"free_{suffix}"].rate, 1.0 / m[f"deformed_{suffix}"].rate
        node_floor = dcfg.node_cosines / (floor.rate * n_threads)
        out[suffix] = {
            "threads": n_threads,
            "seconds_per_network_undeformed": free,
            "seconds_per_network_deformed": deformed,
            "extra_seconds_per_network": deformed - free,
            "node_cosines_floor_seconds": node_floor,
            "point_cosines_floor_seconds": dcfg.field.cosines_per_network
            / (floor.rate * n_threads),
            "deformed_vs_undeformed_time": deformed / free,
            "cosine_count_ratio": (dcfg.field.n_points + dcfg.n_nodes) / dcfg.field.n_points,
            "extra_vs_node_floor": (deformed - free) / node_floor,
        }
    return out


def print_config(result, threads):
    dcfg = result["dcfg"]
    r = ratios(result, threads)
    print(
        f"\n| {dcfg.key}: threads | undeformed networks/s | deformed networks/s | "
        "time deformed / undeformed (cosines (B + Q) / B) | extra us per network | "
        f"N Q cosines at the floor, us | extra / floor (target <= {TARGET_EXTRA_VS_FLOOR:g}) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    m = {x.key: x for x in result["methods"]}
    for suffix, row in r.items():
        print(
            f"| {row['threads']} | {fmt_rate(m[f'free_{suffix}'].rate)} | "
            f"{fmt_rate(m[f'deformed_{suffix}'].rate)} | "
            f"{row['deformed_vs_undeformed_time']:.2f} ({row['cosine_count_ratio']:.2f}) | "
            f"{1e6 * row['extra_seconds_per_network']:.1f} | "
            f"{1e6 * row['node_cosines_floor_seconds']:.1f} | {row['extra_vs_node_floor']:.2f} |"
        )
    floor = result["floor"]
    print(
        f"| floor: {floor.label}, {floor.rate / 1e6:,.0f} M cos/s per thread | - | - | - | - | "
        f"{1e9 / floor.rate:.2f} ns per cosine | - |"
    )
    met = r["tall"]["extra_vs_node_floor"] <= TARGET_EXTRA_VS_FLOOR
    print(
        f"\n{dcfg.key}: the deformation costs {r['tall']['extra_vs_node_floor']:.2f}x the N Q "
        f"cosines at the floor (all threads; one thread {r['t1']['extra_vs_node_floor']:.2f}x)"
        f" -> target <= {TARGET_EXTRA_VS_FLOOR:g}: {'met' if met else 'NOT MET'}; deformed "
        f"runs take {r['tall']['deformed_vs_undeformed_time']:.2f}x the undeformed time"
    )
    return r, met


def config_json(result, threads):
    dcfg, cfg = result["dcfg"], result["dcfg"].field
    rule = dcfg.rule()
    return {
        "config": {
            **{
                k: getattr(cfg, k)
                for k in ("dim", "width", "n_points", "observables", "mass", "cutoff", "alpha")
            },
            "amplitude": cfg.amplitude,
            "points_box_side": cfg.box,
            "deformation": dcfg.deformation().config(cfg.network()),
            "n_nodes": dcfg.n_nodes,
            "nodes": [int(n) for n in rule.nodes],
        },
        "cosines_per_network_points": cfg.cosines_per_network,
        "cosines_per_network_nodes": dcfg.node_cosines,
        "checks": result["exact"],
        "methods": {m.key: m.to_json() for m in result["methods"]},
        "floor": result["floor"].to_json(),
        "ratios": ratios(result, threads),
    }


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
def main(argv=None):
    ap = parser("bench.deformations", __doc__, quick="short run (~1 min)")
    return printout_main(ap, argv, lambda _: "deformations", run_all)


def run_all(args):
    target, repeats = (0.02, 2) if args.smoke else (0.5, 3) if args.quick else (2.0, 5)
    started = time.perf_counter()
    info = machine_info()
    threads = info["numba_threads"]
    mode = " (--smoke)" if args.smoke else " (--quick)" if args.quick else ""
    print(f"# nnft_fast deformed cos-net fields: deformed vs undeformed vs the floor{mode}\n")
    print_machine(info)
    print(f"timing: ~{target} s per repeat, {repeats} interleaved repeats, medians\n")
    configs = (TINY_D1, TINY_D2) if args.smoke else DEFORMATIONS
    results, summary, checks_ok = {}, {}, True
    for dcfg in configs:
        r = run_config(dcfg, target, repeats)
        summary[dcfg.key] = print_config(r, threads)
        checks_ok &= r["exact"]["ok"]
        results[dcfg.key] = config_json(r, threads)
        print(
            f"(load average now {load_average()}; {time.perf_counter() - started:.0f} s so far)\n"
        )
    print("## summary\n")
    print(
        "| config | d | B | Q | time deformed / undeformed | extra / N Q cosines at the floor "
        f"(target <= {TARGET_EXTRA_VS_FLOOR:g}) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for dcfg in configs:
        r, met = summary[dcfg.key]
        print(
            f"| {dcfg.key} | {dcfg.field.dim} | {dcfg.field.n_points} | {dcfg.n_nodes} | "
            f"{r['tall']['deformed_vs_undeformed_time']:.2f} | "
            f"{r['tall']['extra_vs_node_floor']:.2f} ({'met' if met else 'NOT MET'}) |"
        )
    print("\nchecks: " + ("all ok" if checks_ok else "SOME FAILED - see above"))
    elapsed = finish(started)
    write_json(
        args.json,
        "deformations",
        args,
        info,
        elapsed,
        repeats=repeats,
        seconds_per_repeat=target,
        coupling=COUPLING,
        target_extra_vs_node_floor=TARGET_EXTRA_VS_FLOOR,
        configs=results,
        all_checks_ok=bool(checks_ok),
    )
    return checks_ok


if __name__ == "__main__":
    sys.exit(main())
