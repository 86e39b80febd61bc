"""Side-by-side speed comparison on reference config R1 (docs/performance.md#r1).

    python -m bench.compare            # full, ~3 min
    python -m bench.compare --quick    # ~40 s, fewer/shorter repeats
    python -m bench.compare --json results.json
    python -m bench.compare --smoke    # a tiny config, checks the wiring (~1 min)

R1 (bench.configs): n_0 = 64, eight layers of width 512, B = 4 inputs (fixed by a seed),
ReLU, C_W = 2, C_b = 0. Measured in one process, interleaved round-robin (repeat r of
every method, then repeat r+1, ...) so that machine noise hits all methods alike; every
figure is a median over repeats and every comparison a ratio between figures of this one
run (bench.harness).

Methods: NumPy dense baseline (gaussian, orthogonal; bench/numpy_baseline.py, best of the
BLAS-thread/chunk settings tried in a pilot), nnft_fast dense gaussian, projected
gaussian, projected orthogonal, projected gaussian two-point only, and the random-number
floor = (normals/s of fill_normal on a 2^16 array, one thread) x (numba threads) /
(normals per network on the projected path). Before the speed table, the statistics
gathered in the timed runs are cross-checked (bench.agreement: K and connected
four-point z-scores, NumPy vs nnft_fast).
"""

import sys
import time

import numpy as np

from . import agreement, probes
from .configs import R1, SAMPLE_SEED, TINY, X_SEED
from .dense import NumpyDense
from .harness import fmt_rate, finish, parser, round_robin, timed, write_json
from .machine import blas_threads, machine_info, print_machine, threading_layer
from .methods import FLOOR_ARRAY, FLOOR_ARRAY_BIG, DenseMethod, FloorMethod, NnftMethod
from .numpy_baseline import haar_weights

Z_LIMIT = 4.5
TARGETS = {
    "projected_vs_numpy": 200.0,  # R1 projected >= 200x NumPy dense, both inits
    "floor_over_two_point": 2.0,  # projected two-point-only within 2x of the RNG floor
    "dense_vs_numpy": 1.5,  # R1 dense >= 1.5x NumPy dense
    "four_point_overhead": 1.5,  # time(2+4) / time(2) <= 1.5
}


def choose_numpy_setting(m, cfg, n, chunk):
    """Pick the fastest (OpenBLAS threads, chunk) for NumPy method ``m`` so the baseline
    is the best NumPy setting tried: default threads vs one thread first (gaussian: on n
    whole networks; orthogonal: on one n x n Haar draw of the last layer, since a whole
    network on a bad setting can take > 10 s), then chunk 1 (n networks) vs ``chunk``
    (chunk networks). Returns {(blas, chunk): networks/s} and {blas: Haar-draw seconds}."""
    rates, qr_s = {}, {}

    def pilot(blas, c, count):
        m.blas, m.runner.chunk = blas, c
        rates[(blas, c)] = count / m.pilot(count)

    if m.init == "gaussian":
        for blas in (None, 1):
            pilot(blas, 1, n)
        blas = max(rates, key=rates.get)[0]
    else:
        rng, width = np.random.default_rng(0), cfg.widths[-1]
        for b in (None, 1):
            with blas_threads(b):
                qr_s[b] = min(
                    timed(haar_weights, rng, 1, width, width, cfg.cw)[0] for _ in range(3)
                )
        blas = min(qr_s, key=qr_s.get)
        pilot(blas, 1, n)
    pilot(blas, chunk, chunk)
    m.blas, m.runner.chunk = max(rates, key=rates.get)
    return rates, qr_s


def describe_numpy(m):
    return f"BLAS threads {'default' if m.blas is None else m.blas}, chunk {m.runner.chunk}"


def main(argv=None):
    ap = parser("bench.compare", __doc__, quick="short run (~40 s)")
    ap.add_argument("--no-profile", action="store_true", help="skip the time breakdown")
    args = ap.parse_args(argv)
    cfg = TINY if args.smoke else R1
    repeats, target = (2, 0.02) if args.smoke else (3, 0.5) if args.quick else (5, 2.5)
    probe_repeats, probe_target = (
        (2, 0.02 if args.smoke else 0.2) if args.quick or args.smoke else (3, 1.0)
    )
    started = time.perf_counter()
    info = machine_info()
    threads = info["numba_threads"]
    x = cfg.inputs()
    n_proj, n_dense = cfg.normals_per_network("projected"), cfg.normals_per_network("dense")
    print(
        f"# nnft_fast benchmark, {cfg.key}{' (--quick)' if args.quick else ''}"
        f"{' (--smoke)' if args.smoke else ''}\n"
    )
    print_machine(info)
    print(f"{cfg.describe()}; X ~ N(0,1) seed {X_SEED}")
    print(f"normals per network: projected {n_proj:,}, dense {n_dense:,}\n")

    def numpy(init):
        runner = NumpyDense(
            cfg.widths, x, init=init, cw=cfg.cw, cb=cfg.cb, seed=SAMPLE_SEED, chunk=1
        )
        return DenseMethod(f"numpy_dense_{init}", f"NumPy dense {init}", runner, blas=1)

    np_g, np_o = numpy("gaussian"), numpy("orthogonal")
    nf_dense = NnftMethod(cfg, "gaussian", "dense", x=x)
    nf_dense1 = NnftMethod(
        cfg,
        "gaussian",
        "dense",
        x=x,
        blas=1,
        key="nnft_dense_gaussian_blas1",
        label="nnft_fast dense gaussian, OpenBLAS at 1 thread (diagnostic)",
    )
    nf_dense_o = NnftMethod(
        cfg, "orthogonal", "dense", x=x, label="nnft_fast dense orthogonal (2+4-point)"
    )
    nf_pg = NnftMethod(cfg, "gaussian", "projected", x=x)
    nf_po = NnftMethod(cfg, "orthogonal", "projected", x=x)
    nf_p2 = NnftMethod(
        cfg,
        "gaussian",
        "projected",
        ("two_point",),
        x=x,
        key="nnft_projected_gaussian_two_point",
        label="nnft_fast projected gaussian, two-point only",
    )
    floor = FloorMethod("rng_floor", "RNG floor (fill_normal x threads / normals per net)")
    floor_big = FloorMethod(
        "rng_floor_big_array", "RNG floor, fill_normal on a 2^21 array", FLOOR_ARRAY_BIG
    )
    methods = [np_g, np_o, nf_dense, nf_dense1, nf_dense_o, nf_pg, nf_po, nf_p2, floor, floor_big]

    print("## warm-up (compile / first call, not timed)")
    for m in methods:
        m.warmup()
        print(f"  {m.label}: first call {m.first_call_s:.2f} s")
    info["numba_threading_layer"] = threading_layer()
    print(f"  (numba threading layer: {info['numba_threading_layer']})")
    pilots = {"gaussian": (8, 8), "orthogonal": (2, 4) if args.quick or args.smoke else (4, 8)}
    numpy_pilots = {}
    for m in (np_g, np_o):
        rates, qr_s = choose_numpy_setting(m, cfg, *pilots[m.init])
        numpy_pilots[m.key] = {
            "chosen": describe_numpy(m),
            "pilot_rates": {f"blas={b},chunk={c}": r for (b, c), r in rates.items()},
        }
        parts = [
            f"one {cfg.widths[-1]}x{cfg.widths[-1]} Haar draw, "
            f"{'default' if b is None else b} BLAS thr: {t * 1e3:.0f} ms"
            for b, t in qr_s.items()
        ]
        parts += [
            f"{'default' if b is None else b} BLAS thr/chunk {c}: {fmt_rate(r)}/s"
            for (b, c), r in rates.items()
        ]
        print(f"  {m.label} pilot: {', '.join(parts)} -> using {describe_numpy(m)}")
    print(f"\n## calibration (each timed repeat ~{target} s; {repeats} interleaved repeats)")
    sizes = {
        np_g: (8, 2, 10**4),
        np_o: (2, 2, 10**4),
        nf_dense: (4, 2, 10**4),
        nf_dense1: (4, 2, 10**4),
        nf_dense_o: (2, 2, 10**4),
        nf_pg: (256, 2, 10**7),
        nf_po: (128, 2, 10**7),
        nf_p2: (256, 2, 10**7),
        floor: (16, 1, 10**6),
        floor_big: (1, 1, 10**5),
    }
    for m in methods:
        n = m.calibrate(target, *sizes[m])
        print(
            f"  {m.label}: {n} {'calls' if isinstance(m, FloorMethod) else 'networks'} per repeat"
        )
    print("\n## timing")
    round_robin(methods, repeats, "main")
    floor_rate = floor.networks_per_s(cfg, threads)

    profile = None
    if not args.no_profile:
        print("\n## time breakdown probes (interleaved, same process)")
        profile = probes.breakdown(cfg, x, SAMPLE_SEED + 2)
        for m in profile:
            m.warmup()
            m.calibrate(probe_target, 64, 2, 10**7)
            print(
                f"  {m.label}: first call {m.first_call_s:.2f} s, {m.n_per_repeat} "
                f"networks per repeat"
            )
        round_robin(profile, probe_repeats, "probes")

    agree, all_ok = check_agreement(
        [
            ("NumPy dense gaussian vs nnft_fast dense gaussian", np_g, nf_dense),
            ("NumPy dense gaussian vs nnft_fast projected gaussian", np_g, nf_pg),
            ("NumPy dense gaussian vs nnft_fast projected two-point only", np_g, nf_p2),
            ("NumPy dense orthogonal vs nnft_fast projected orthogonal", np_o, nf_po),
            ("nnft_fast dense gaussian vs nnft_fast projected gaussian", nf_dense, nf_pg),
        ],
        (np_g, np_o, nf_dense),
        16 if args.quick or args.smoke else 64,
        cfg,
    )

    base = np_g.rate
    rows = [
        (m, m.rate, m.best, label)
        for m, label in (
            (np_g, f"NumPy dense gaussian ({describe_numpy(np_g)})"),
            (np_o, f"NumPy dense orthogonal ({describe_numpy(np_o)})"),
            (nf_dense, nf_dense.label + " (2+4-point)"),
            (nf_dense1, nf_dense1.label),
            (nf_dense_o, nf_dense_o.label),
            (nf_pg, nf_pg.label + " (2+4-point)"),
            (nf_po, nf_po.label + " (2+4-point)"),
            (nf_p2, nf_p2.label),
        )
    ]
    rows += [
        (
            floor,
            floor_rate,
            floor.networks_per_s(cfg, threads, best=True),
            f"RNG floor: fill_normal ({FLOOR_ARRAY:,} array) {floor.rate / 1e6:.1f} M "
            f"normals/s/thread x {threads} threads / {n_proj:,} normals",
        ),
        (
            floor_big,
            floor_big.networks_per_s(cfg, threads),
            floor_big.networks_per_s(cfg, threads, best=True),
            f"(reference: same with a {FLOOR_ARRAY_BIG:,} array, "
            f"{floor_big.rate / 1e6:.1f} M normals/s/thread)",
        ),
    ]
    print(
        f"\n## speed, {cfg.key} (networks/s: median of {repeats} interleaved repeats; best "
        "in parentheses; ratios from medians)\n"
    )
    print("| method | networks/s | ratio vs NumPy dense gaussian |")
    print("|---|---:|---:|")
    for _, r, b, label in rows:
        print(f"| {label} | {fmt_rate(r)} ({fmt_rate(b)}) | {r / base:,.2f}x |")

    targets = check_targets(np_g, np_o, nf_dense, nf_pg, nf_po, nf_p2, floor_rate)
    prof_json = (
        None
        if profile is None
        else print_breakdown(
            cfg, profile, nf_pg, nf_po, nf_p2, nf_dense, nf_dense1, np_g, floor, floor_rate, threads
        )
    )
    print()
    elapsed = finish(started)
    write_json(
        args.json,
        "compare",
        args,
        info,
        elapsed,
        config={
            "key": cfg.key,
            "widths": list(cfg.widths),
            "B": cfg.n_inputs,
            "cw": cfg.cw,
            "cb": cfg.cb,
            "activation": cfg.activation,
            "x_seed": X_SEED,
            "sample_seed": SAMPLE_SEED,
            "repeats": repeats,
            "seconds_per_repeat": target,
            "normals_per_network_projected": n_proj,
            "normals_per_network_dense": n_dense,
        },
        methods={m.key: m.to_json() for m in methods},
        numpy_configs=numpy_pilots,
        rng_floor_networks_per_s=floor_rate,
        ratios_vs_numpy_dense_gaussian={m.key: r / base for m, r, _, _ in rows},
        targets=targets,
        agreement=agree,
        agreement_ok=bool(all_ok),
        profile_seconds_per_network=prof_json,
    )
    return 0


def check_agreement(checks, top_up, n_min, cfg):
    """bench.agreement on the networks of the timed runs (topped up to n_min)."""
    print(
        f"\n## statistical agreement, NumPy vs nnft_fast (networks from the timed runs; "
        f"unique tensor entries, all {cfg.n_layers} layers)"
    )
    for m in top_up:
        extra = m.top_up(n_min)
        if extra:
            print(f"  (untimed top-up: {extra} more networks of {m.label} for the check)")
    agree, all_ok = {}, True
    print(
        "\n| comparison | N_a | N_b | observable | values | max abs z (own errors) | "
        "max abs z_pt (pooled, t) | rms z_pt | abs z_pt > 3 | verdict |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---|")
    for label, a, b in checks:
        res = agreement.compare(a.ensemble, b.ensemble)
        agree[label] = {"n_a": a.next_network, "n_b": b.next_network, **res}
        for name, r in res.items():
            ok = r["max_abs_z_pt"] < Z_LIMIT
            all_ok &= ok
            print(
                f"| {label} | {a.next_network:,} | {b.next_network:,} | {name} | {r['n']} | "
                f"{r['max_abs_z']:.2f} | {r['max_abs_z_pt']:.2f} | {r['rms_z_pt']:.2f} | "
                f"{r['n_abs_z_pt_gt_3']} | {'ok' if ok else 'CHECK'} |"
            )
    print(
        f"\n(z_pt: the larger ensemble's jackknife error stands in for both sides, see "
        f"bench.agreement; values are strongly correlated across entries and layers, so "
        f"rms is not chi-square distributed; verdict: max |z_pt| < {Z_LIMIT})"
    )
    print(
        "agreement: "
        + (
            "all consistent"
            if all_ok
            else "SOME COMPARISONS FAIL - speed figures below are suspect"
        )
    )
    return agree, all_ok


def check_targets(np_g, np_o, nf_dense, nf_pg, nf_po, nf_p2, floor_rate):
    """The targets of issue 2, as ratios of this run's medians."""
    t = TARGETS
    measured = [
        (
            "R1 projected gaussian vs NumPy dense gaussian",
            nf_pg.rate / np_g.rate,
            t["projected_vs_numpy"],
            ">=",
            "x",
        ),
        (
            "R1 projected orthogonal vs NumPy dense orthogonal",
            nf_po.rate / np_o.rate,
            t["projected_vs_numpy"],
            ">=",
            "x",
        ),
        (
            "  (projected orthogonal vs NumPy dense *gaussian*, stricter reading)",
            nf_po.rate / np_g.rate,
            t["projected_vs_numpy"],
            ">=",
            "x",
        ),
        (
            "projected two-point only vs RNG floor (floor / achieved)",
            floor_rate / nf_p2.rate,
            t["floor_over_two_point"],
            "<=",
            "",
        ),
        (
            "R1 dense gaussian vs NumPy dense gaussian",
            nf_dense.rate / np_g.rate,
            t["dense_vs_numpy"],
            ">=",
            "x",
        ),
        (
            "four-point overhead, projected gaussian: time(2+4) / time(2)",
            nf_p2.rate / nf_pg.rate,
            t["four_point_overhead"],
            "<=",
            "",
        ),
    ]
    print("\n## targets\n")
    print("| target | required | measured | met |")
    print("|---|---:|---:|---|")
    out = []
    for name, value, bound, op, unit in measured:
        ok = value >= bound if op == ">=" else value <= bound
        req, got = f"{op} {bound:g}{unit}", f"{value:,.2f}{unit}"
        print(f"| {name} | {req} | {got} | {'yes' if ok else 'NO'} |")
        out.append({"target": name, "required": req, "measured": got, "met": bool(ok)})
    return out


def print_breakdown(
    cfg, profile, nf_pg, nf_po, nf_p2, nf_dense, nf_dense1, np_g, floor, floor_rate, threads
):
    """Where the time goes, per network (probes of bench.probes and the full samples)."""
    full24 = 1.0 / nf_pg.rate
    n_proj = cfg.normals_per_network("projected")
    print(
        "\n## where the time goes (per network, median; % of the full projected "
        "gaussian 2+4-point sample time in this run)\n"
    )
    print("| piece | us/network | % of projected 2+4 |")
    print("|---|---:|---:|")
    entries = [(m.label, 1.0 / m.rate, m.key) for m in profile]
    entries += [
        ("full nf.sample, projected gaussian, two-point", 1.0 / nf_p2.rate, "sample_two_point"),
        ("full nf.sample, projected gaussian, 2+4-point", full24, "sample_four_point"),
        ("full nf.sample, projected orthogonal, 2+4-point", 1.0 / nf_po.rate, "sample_orthogonal"),
        ("full nf.sample, dense gaussian, 2+4-point", 1.0 / nf_dense.rate, "sample_dense"),
    ]
    for label, t, _ in entries:
        print(f"| {label} | {t * 1e6:,.1f} | {100 * t / full24:,.0f}% |")
    by = {m.key: 1.0 / m.rate for m in profile}
    fwd_g, rng_p = by["forward_projected_gaussian"], by["rng_projected"]
    print(
        f"\nprojected gaussian, per network: RNG {rng_p * 1e6:.1f} us + rest of the forward "
        f"pass {(fwd_g - rng_p) * 1e6:.1f} us (QR of S, small matmul, activation, "
        f"allocation) + two-point moments {by['moments_two_point'] * 1e6:.1f} us + "
        f"four-point extra {(by['moments_four_point'] - by['moments_two_point']) * 1e6:.1f}"
        f" us = {(fwd_g + by['moments_four_point']) * 1e6:.1f} us; full sample "
        f"{full24 * 1e6:.1f} us"
    )
    print(
        f"RNG parallel efficiency: 1 thread {by['rng_projected_1thread'] * 1e6:.1f} us vs "
        f"{threads} threads {rng_p * 1e6:.1f} us per network -> speed-up "
        f"{by['rng_projected_1thread'] / rng_p:.2f} of an ideal {threads} (the floor "
        f"assumes the ideal); 1-thread projected RNG runs at "
        f"{n_proj / by['rng_projected_1thread'] / 1e6:.1f} M normals/s vs "
        f"{floor.rate / 1e6:.1f} M/s for fill_normal on a {FLOOR_ARRAY:,} array (one call "
        f"per layer of {n_proj // cfg.n_layers:,} normals)"
    )
    print(
        f"projected two-point only: {1e6 / nf_p2.rate:.1f} us/network = "
        f"{(1.0 / nf_p2.rate) / rng_p:.2f}x the measured parallel RNG-only time and "
        f"{floor_rate / nf_p2.rate:.2f}x the floor ({1e6 / floor_rate:.1f} us)"
    )
    print(
        f"dense gaussian, per network: RNG {by['rng_dense'] * 1e3:.2f} ms; forward "
        f"{by['forward_dense_gaussian'] * 1e3:.2f} ms (OpenBLAS at 1 thread: "
        f"{by['forward_dense_gaussian_blas1'] * 1e3:.2f} ms); full sample "
        f"{1e3 / nf_dense.rate:.2f} ms (OpenBLAS at 1 thread: {1e3 / nf_dense1.rate:.2f}"
        f" ms); NumPy dense baseline {1e3 / np_g.rate:.2f} ms"
    )
    return {key: t for _, t, key in entries}


if __name__ == "__main__":
    sys.exit(main())
