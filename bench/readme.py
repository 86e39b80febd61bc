"""Regenerate the README's performance section from the JSON files of one
``bench.performance`` run (bench.matrix, bench.scaling --points, bench.fields).

    python -m bench.performance                      # the run (~20 min) and this rewrite
    python -m bench.readme --matrix bench/matrix.json --scaling bench/scaling_points.json \
        --fields bench/fields.json                   # the rewrite alone

The section sits between the markers ``<!-- bench.performance: begin -->`` and
``<!-- bench.performance: end -->`` and is replaced as a whole; nothing else in the file
is touched. It states the machine and the date, the commands, the random-number floor
(the project's own normals/s and cosines/s per thread in this run); the benchmark matrix,
one table of networks/s per config with two ratios, against the best dense and against
the best projected baseline of the same weight law (the fastest of NumPy, PyTorch, JAX),
the fraction of the floor of its algorithm and the agreement verdicts; the issue-19
targets against what was measured, with the ratio the floor itself allows; networks/s
against the number of points B with the fitted slope; the cos-net field configs.
"""

import argparse
import json
from pathlib import Path

from .harness import REPO

BEGIN = "<!-- bench.performance: begin -->"
END = "<!-- bench.performance: end -->"
TARGET_VS_PROJECTED = 20.0  # issue 19: R1 >= 20x the best projected baseline
TARGET_FLOOR_FRACTION = 0.8  # issue 19: R1 >= 0.8 of the floor with the four-point function
CONFIG_TITLES = {
    "R1": "R1 (64→8×512, B=4)",
    "narrow_deep": "narrow-deep (32→64×32, B=4)",
    "wide": "wide (64→4×2048, B=4)",
    "nnft_1hl": "1-hidden-layer NNFT (1→1000→1, 6 inputs)",
}


ALGORITHMS = ("dense", "projected")


def _algorithm(key, m):
    """A baseline's algorithm: its "algorithm" entry, or (older files) from its key."""
    return m.get("algorithm") or ("projected" if "_projected_" in key else "dense")


def best_baselines(methods):
    """{(algorithm, init): the fastest median rate of the baselines of that algorithm and
    weight law} of one config's methods (neural-tangents left out, as in bench.matrix)."""
    best = {}
    for key, m in methods.items():
        if m.get("kind") == "baseline" and key != "neural_tangents_mc":
            k = (_algorithm(key, m), m["init"])
            best[k] = max(best.get(k, 0.0), m["median_rate"])
    return best


def _cell(rate, init, best, fraction):
    two = [f"{rate / best[(a, init)]:,.1f}×" if (a, init) in best else "–" for a in ALGORITHMS]
    share = "" if fraction is None else f"; {fraction:.2f}"
    return f"{_rate(rate)} ({' / '.join(two)}{share})"


def _rate(value):
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def _agreement(methods, flag=5.0):
    """Largest |z_pt| over the compared methods and quantities, and the methods above
    ``flag`` (bench.matrix's verdict)."""
    worst, flagged = 0.0, []
    for m in methods.values():
        z = max((q["max_abs_z_pt"] for q in (m["agreement"] or {}).values()), default=0.0)
        worst = max(worst, z)
        if z > flag:
            flagged.append(f"{m['label']} ({z:.1f})")
    return f"max |z| {worst:.1f}" + (f", flagged: {', '.join(flagged)}" if flagged else "")


def machine_line(info):
    libs = ", ".join(f"{k} {info[k]}" for k in ("numpy", "numba", "jax", "torch") if k in info)
    return (
        f"{info['cpu_model']}, {info['cpu_count']} cores, Python {info['python']}, {libs}, "
        f"{info['numba_threads']} Numba threads"
    )


def _run(module, results, source, options=""):
    """ "`python -m <module> [options] --json <source>`, its minutes and starting load"."""
    flags = (
        options
        + (" --quick" if results["quick"] else "")
        + (" --smoke" if results["smoke"] else "")
    )
    load = " / ".join(f"{v:.2f}" for v in results["machine"]["load_average_at_start"])
    return (
        f"`python -m {module}{flags} --json {source}`, {results['wall_time_s'] / 60:.0f} min, "
        f"load average {load} at its start"
    )


def matrix_section(results, source):
    """The benchmark-matrix part (markdown lines) of one ``bench.matrix`` JSON."""
    configs = results["configs"]
    keys = list(configs)
    lines = [
        f"**Benchmark matrix** ({_run('bench.matrix', results, source)}; printout beside "
        "the JSON). Networks/s "
        "(median of interleaved repeats) with two- and four-point statistics on every "
        "layer; in brackets the ratios to the best dense / the best projected baseline "
        "(the fastest of NumPy, PyTorch, JAX running that algorithm: explicit weights, or "
        "nnft_fast's own exact low-rank sampler written in the library) of the same weight "
        "law, measured in the same run, then the fraction of the random-number floor of "
        "its algorithm: nnft_fast's normal generator (`fill_normal`, "
        + ", ".join(
            f"{k} {configs[k]['rng_floor']['normals_per_s_per_thread'] / 1e6:.0f}" for k in keys
        )
        + " M normals/s per thread in each config's run) times the threads, over the "
        "normals one network draws (projected: Σ n_l min(n_{l−1}, B); dense: Σ n_l n_{l−1}).",
        "",
        "| method | " + " | ".join(CONFIG_TITLES.get(k, k) for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    labels = {}
    for k in keys:
        for key, m in configs[k]["methods"].items():
            labels.setdefault(key, m["label"])
    best = {k: best_baselines(configs[k]["methods"]) for k in keys}
    for key, label in labels.items():
        cells = []
        for k in keys:
            m = configs[k]["methods"].get(key)
            if m is None:
                cells.append("–")
            else:
                cells.append(_cell(m["median_rate"], m["init"], best[k], m.get("floor_fraction")))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for algorithm, entry in (("projected", "networks_per_s"), ("dense", "networks_per_s_dense")):
        floor = [
            _cell(configs[k]["rng_floor"][entry], "gaussian", best[k], None)
            if entry in configs[k]["rng_floor"]
            else "–"
            for k in keys
        ]
        lines.append(f"| random-number floor ({algorithm}) | " + " | ".join(floor) + " |")
    lines += [
        "",
        "Agreement (every method against nnft_fast projected of the same law, z-scores "
        "of K and the connected four-point functions from the project's jackknife "
        "errors; z_pt as in bench.matrix, flagged above 5): "
        + "; ".join(f"{k}: {_agreement(configs[k]['methods'])}" for k in keys)
        + ".",
    ]
    skipped = [f"{name} ({reason})" for name, reason in results["baselines"].items() if reason]
    if skipped:
        lines.append("Skipped baselines: " + "; ".join(skipped) + ".")
    return lines


def targets_lines(results):
    """Issue 19's R1 targets against the measurement, and what the floor itself allows."""
    r1 = results["configs"].get("R1")
    if r1 is None:
        return []
    methods = r1["methods"]
    ours = methods["nnft_projected_gaussian"]
    best = best_baselines(methods).get(("projected", "gaussian"))
    floor = r1["rng_floor"]["networks_per_s"]
    if best is None:
        return []
    vs = ours["median_rate"] / best
    fraction = ours["floor_fraction"]
    return [
        "",
        f"Targets on R1 (projected Gaussian, four-point): ≥ {TARGET_VS_PROJECTED:g}× the best "
        f"projected baseline — measured {vs:.1f}× "
        f"({'met' if vs >= TARGET_VS_PROJECTED else 'not met'}); ≥ {TARGET_FLOOR_FRACTION:g} "
        f"of the floor — measured {fraction:.2f} "
        f"({'met' if fraction >= TARGET_FLOOR_FRACTION else 'not met'}). The floor itself is "
        f"{floor / best:.1f}× the best projected baseline on this machine: no implementation "
        "that draws the same normals with this generator can be faster than that, so the "
        f"{TARGET_VS_PROJECTED:g}× target needs a machine where the baselines are slower "
        "relative to the generator, or a cheaper generator.",
    ]


def points_lines(results, source):
    """networks/s against B of the many-points sweeps (``bench.scaling --points``)."""
    sweeps = results["sweeps"]
    keys = [k for k in ("points_field", "points_mlp") if k in sweeps]
    if not keys:
        return []
    lines = [
        "",
        f"**Many points** ({_run('bench.scaling', results, source, ' --points')}; two-point "
        "function only): networks/s "
        "against the number of points B, and the fraction of the floor (the field: its N B "
        "cosines; the MLP: its projected normals).",
        "",
        "| B | " + " | ".join(f"{sweeps[k]['title']} | fraction of floor" for k in keys) + " |",
        "|---:|" + "---:|---:|" * len(keys),
    ]
    by_x = {k: {p["x"]: p for p in sweeps[k]["points"]} for k in keys}
    for v in sorted({x for k in keys for x in by_x[k]}):
        cells = []
        for k in keys:
            p = by_x[k].get(v)
            cells += (
                ["–", "–"]
                if p is None
                else [
                    _rate(p["networks_per_s_median"]),
                    f"{p['floor_fraction']:.3f}",
                ]
            )
        lines.append(f"| {v:,} | " + " | ".join(cells) + " |")
    fits = []
    for k in keys:
        sw = sweeps[k]
        fit = sw["fit_values"]
        model = sw.get("cost_model") or {}
        fits.append(
            f"{k}: slope {sw['fitted_slope']:+.2f} over B = {fit[0]:,}…{fit[-1]:,} (expected "
            f"{sw['expected_slope']:g}: {sw['verdict']}); the B² term dominates beyond "
            f"B ≈ {model.get('crossover', float('nan')):,.0f}"
        )
    lines += ["", "Fitted: " + "; ".join(fits) + "."]
    return lines


def fields_lines(results, source):
    """The cos-net field configs of ``bench.fields``."""
    lines = [
        "",
        f"**Cos-net fields** ({_run('bench.fields', results, source)}): nnft_fast against "
        "NumPy drawing the same law, and the fraction of the cosine floor (N B cosines per "
        "network at the project's cosine rate, "
        + ", ".join(
            f"{k} {c['floors']['floor_cos_sin_turn']['median_rate'] / 1e6:.0f}"
            for k, c in results["configs"].items()
        )
        + " M/s per thread in each config's run).",
        "",
        "| config | nnft_fast networks/s | NumPy | ratio | cosine floor | fraction of the floor |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, c in results["configs"].items():
        r = c["ratios"]
        cfg = c["config"]
        what = "two- and four-point" if "four_point" in cfg["observables"] else "two-point"
        lines.append(
            f"| {key}: d = {cfg['dim']}, N = {cfg['width']:,}, B = {cfg['n_points']}, {what} | "
            f"{_rate(c['methods']['nnft_tall']['median_rate'])} | "
            f"{_rate(r['numpy_best_networks_per_s'])} | {r['nnft_vs_numpy']:.1f}× | "
            f"{_rate(r['floor_networks_per_s'])} | {r['nnft_floor_fraction']:.2f} |"
        )
    return lines


def performance_section(matrix, scaling, fields, sources):
    """Markdown of the whole README section from one run's three JSON results."""
    info = matrix["machine"]
    floors = scaling.get("floors_per_thread", {})
    lines = [
        BEGIN,
        f"Generated by `python -m bench.performance` ({info['date'][:10]}) on one machine: "
        f"{machine_line(info)}. The random-number floor of that machine: nnft_fast's "
        f"own generator draws {floors.get('normals_per_s', float('nan')) / 1e6:.0f} M "
        f"normals/s and {floors.get('cosines_per_s', float('nan')) / 1e6:.0f} M cosines/s "
        "per thread (measured at the start of the many-points run); a config's floor is "
        "that rate times the threads over what one network draws. Every figure below was "
        "measured in this run; ratios are between methods timed interleaved in one process.",
        "",
    ]
    lines += matrix_section(matrix, sources["matrix"])
    lines += targets_lines(matrix)
    lines += points_lines(scaling, sources["scaling_points"])
    lines += fields_lines(fields, sources["fields"])
    lines.append(END)
    return "\n".join(lines)


def rewrite(readme, text):
    """README text with the marked section replaced by ``text``."""
    if readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise ValueError(f"README must hold exactly one {BEGIN} ... {END} block")
    head, rest = readme.split(BEGIN)
    _, tail = rest.split(END)
    return head + text + tail


def load(path):
    with open(path) as fh:
        return json.load(fh)


def shown_path(path):
    """``path`` relative to the repository where it lies inside it (as the README shows it)."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def rewrite_file(readme_path, text):
    with open(readme_path) as fh:
        readme = fh.read()
    with open(readme_path, "w") as fh:
        fh.write(rewrite(readme, text))


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m bench.readme",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--matrix", required=True, help="JSON of python -m bench.matrix --json")
    ap.add_argument("--scaling", required=True, help="JSON of python -m bench.scaling --points")
    ap.add_argument("--fields", required=True, help="JSON of python -m bench.fields --json")
    ap.add_argument("--readme", default="README.md")
    args = ap.parse_args(argv)
    paths = {"matrix": args.matrix, "scaling_points": args.scaling, "fields": args.fields}
    text = performance_section(
        *(load(paths[k]) for k in ("matrix", "scaling_points", "fields")),
        sources={k: shown_path(p) for k, p in paths.items()},
    )
    rewrite_file(args.readme, text)
    print(f"rewrote the performance section of {args.readme}")


if __name__ == "__main__":
    main()
