"""Coverage study of the jackknife error bars (docs/estimators.md#coverage).

Over many seeds of small ensembles (3,000 networks, one input, no bias), the estimate of
E[z^4]/E[z^2]^2 at the last layer is compared with its exact value, 3 prod_{l'<l}
(1 + 5/n_l') for Gaussian ReLU (C_W = 2) and 3 prod (1 + 2/n_l') for Gaussian linear
networks (C_W = 1), and K = E[z^2] with 2 (ReLU) or 1 (linear) times |x|^2 / n_0. For
each configuration: the coverage of |z| < 1 and |z| < 2 (68.3% and 95.4% if the error bars
are right), the mean z, and the fraction of seeds whose estimate carries an
``UnreliableErrorWarning`` (with the coverage among the seeds that warned and those that
did not).

``--options`` evaluates the alternatives of issue 17 on the per-network statistics of
the hardest configurations (chunks of 64 networks put one network in each block, so any
blocking can be formed afterwards): the jackknife bias correction of the value
``g full - (g - 1) mean(replicas)``, other numbers of blocks (8 .. 1000), a Student-t
interval with the degrees of freedom 2 g / (k - 1) estimated from the replicas'
kurtosis k, and an empirical kurtosis inflation sqrt(1 + c (k - 3)/g) of the error.

    python -m bench.coverage_study [--seeds 250] [--json PATH]   # ~4 min
    python -m bench.coverage_study --options [--seeds 250]      # ~15 min more
    python -m bench.coverage_study --smoke                       # 20 seeds, 2 configs
"""

import math
import time
import warnings

import numpy as np
from scipy import stats

import nnft_fast as nf
from nnft_fast.ensemble import UnreliableErrorWarning

from .harness import finish, parser, write_json
from .machine import machine_info, print_machine

N_NETWORKS = 3000
FIRST_SEED = 1000
# (widths, activation): easy first, then the heavy-tailed ones (ReLU depth/width 1/4:
# four hidden layers of width 16; issue 17's (1, 4, 4, 4, 4, 1) is depth/width 1).
CONFIGS = [
    ((1, 64, 64, 64), "relu"),
    ((1, 32, 32), "relu"),
    ((1, 16, 16, 16), "linear"),
    ((1, 16, 16, 16, 16, 16), "relu"),
    ((1, 16, 16, 16, 16, 1), "relu"),
    ((1, 32, 32, 32, 32, 1), "relu"),
    ((1, 4, 4, 4, 4, 1), "relu"),
    ((1, 8, 8, 1), "linear"),
    ((1, 16, 16, 16, 16, 16), "linear"),
]
OPTION_CONFIGS = [((1, 64, 64, 64), "relu"), ((1, 16, 16, 16, 16, 16), "relu")]


def network(widths, activation):
    return nf.Network(widths, activation, "gaussian", cw=2.0 if activation == "relu" else 1.0)


def exact(widths, activation, what):
    if what == "K":
        return 2.0 if activation == "relu" else 1.0
    c = 5.0 if activation == "relu" else 2.0
    return 3.0 * math.prod(1.0 + c / n for n in widths[1:-1])


STATISTICS = {
    "ratio": lambda m: m.same_raw[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2,
    "K": lambda m: m.two_point[..., 0, 0],
}


def coverage(z):
    z = np.asarray(z)
    s = len(z)
    return {
        "seeds": s,
        "cov1": float(np.mean(np.abs(z) < 1)),
        "cov2": float(np.mean(np.abs(z) < 2)),
        "mean_z": float(np.mean(z)),
        "mean_z_se": float(np.std(z) / math.sqrt(s)),
    }


def fmt(c):
    if c is None:
        return "-"
    return f"{c['cov1']:.3f}/{c['cov2']:.3f} z {c['mean_z']:+.2f}"


def survey(widths, activation, seeds, n_networks):
    """{what: figures} of the kurtosis ratio and K at the last layer over ``seeds``."""
    net, x, layer = network(widths, activation), np.ones((1, widths[0])), len(widths) - 1
    z = {w: [] for w in STATISTICS}
    warned = {w: [] for w in STATISTICS}
    for seed in seeds:
        ens = nf.sample(net, x, n_networks, seed=seed)
        for what, statistic in STATISTICS.items():
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = ens.estimate(layer, statistic)
            z[what].append(float(est.zscore(exact(widths, activation, what))))
            warned[what].append(any(issubclass(w.category, UnreliableErrorWarning) for w in caught))
    out = {}
    for what in STATISTICS:
        zw, w = np.array(z[what]), np.array(warned[what])
        out[what] = {
            **coverage(zw),
            "warned": float(np.mean(w)),
            "warned_coverage": coverage(zw[w]) if w.any() else None,
            "unwarned_coverage": coverage(zw[~w]) if (~w).any() else None,
        }
    return out


def per_network(net, x, n_networks, seed, layer):
    """(n_networks, n_stat) statistics [G | Q | GG] of each network at ``layer``."""
    rows = []
    for start in range(0, n_networks, 64):
        k = min(64, n_networks - start)
        ens = nf.sample(net, x, k, seed=seed, first_network=start)
        rows.append(ens.accumulator.block_sums[[(start + i) % 64 for i in range(k)], layer - 1])
    return np.concatenate(rows)


def ratio_of(totals, count):
    return (totals[..., 1] / count) / (totals[..., 0] / count) ** 2


def options(widths, activation, seeds, n_networks):
    """Coverage of the alternatives (module docstring) on the same networks."""
    net, x, layer = network(widths, activation), np.ones((1, widths[0])), len(widths) - 1
    ex = exact(widths, activation, "ratio")
    stats_per_seed = [per_network(net, x, n_networks, s, layer) for s in seeds]
    z = {}
    for g in (8, 16, 64, 256, 1000):
        rows = []
        for s in stats_per_seed:
            index = np.arange(len(s)) % g
            blocks = np.zeros((g, s.shape[1]))
            np.add.at(blocks, index, s)
            counts = np.bincount(index, minlength=g)
            total = blocks.sum(axis=0)
            full = ratio_of(total, len(s))
            reps = ratio_of(total - blocks, len(s) - counts)
            d = reps - reps.mean()
            err = math.sqrt((g - 1) / g * np.sum(d**2))
            k = g * np.sum(d**4) / np.sum(d**2) ** 2
            rows.append((full, err, k, g * full - (g - 1) * reps.mean()))
        full, err, k, corrected = np.array(rows).T
        z[f"{g} blocks"] = (full - ex) / err
        if g == 64:
            z["64 blocks, bias-corrected value"] = (corrected - ex) / err
            t = stats.t.ppf(stats.norm.cdf(1.0), 2 * g / np.maximum(k - 1, 1e-9))
            z["64 blocks, Student t (dof from kurtosis)"] = (full - ex) / (err * t)
            for c in (2, 3, 4):
                inflation = np.sqrt(1 + c * np.maximum(k - 3, 0) / g)
                z[f"64 blocks, kurtosis inflation c={c}"] = (full - ex) / (err * inflation)
            bias = (np.mean(full) - ex) / ex
            bias_se = np.std(full) / math.sqrt(len(full)) / ex
            print(
                f"    value's relative bias {bias:+.4f} +- {bias_se:.4f}; "
                f"bias-corrected {(np.mean(corrected) - ex) / ex:+.4f}; "
                f"mean err^2 / var(value) {np.mean(err**2) / np.var(full):.3f}; "
                f"mean err / sd(value) {np.mean(err) / np.std(full):.3f}"
            )
    return {label: coverage(v) for label, v in z.items()}


def main():
    ap = parser("bench.coverage_study", __doc__)
    ap.add_argument("--seeds", type=int, default=250, help="seeds per configuration")
    ap.add_argument("--options", action="store_true", help="also evaluate the alternatives")
    args = ap.parse_args()
    started = time.perf_counter()
    info = machine_info()
    print_machine(info)
    seeds = range(FIRST_SEED, FIRST_SEED + (20 if args.smoke else args.seeds))
    configs = CONFIGS[:1] + CONFIGS[3:4] if args.smoke else CONFIGS
    n = N_NETWORKS
    print(f"{n} networks, seeds {seeds.start}..{seeds.stop - 1}; cov1/cov2 mean z")
    results = []
    for widths, activation in configs:
        out = survey(widths, activation, seeds, n)
        for what, r in out.items():
            print(
                f"{activation:6s} {str(widths):22s} {what:5s} {fmt(r)} "
                f"(+-{math.sqrt(0.683 * 0.317 / r['seeds']):.3f}/"
                f"+-{math.sqrt(0.954 * 0.046 / r['seeds']):.3f}/+-{r['mean_z_se']:.2f}) | "
                f"warned {r['warned']:.2f}: {fmt(r['warned_coverage'])}, "
                f"unwarned {fmt(r['unwarned_coverage'])}",
                flush=True,
            )
        results.append({"widths": widths, "activation": activation, **out})
    option_results = []
    if args.options or args.smoke:
        for widths, activation in OPTION_CONFIGS:
            print(f"options, {activation} {widths}, ratio:")
            opt = options(widths, activation, seeds[: 3 if args.smoke else None], n)
            for label, c in opt.items():
                print(f"    {label:42s} {fmt(c)}", flush=True)
            option_results.append({"widths": widths, "activation": activation, **opt})
    wall = finish(started)
    write_json(
        args.json,
        "coverage_study",
        args,
        info,
        wall,
        n_networks=n,
        seeds=[seeds.start, seeds.stop],
        configs=results,
        options=option_results,
    )


if __name__ == "__main__":
    main()
