"""Helper of bench/gpu_check.sh: the environment report and the final summary.

    python bench/gpu_check.py env OUT.json            # versions, GPU, CUDA (never raises)
    python bench/gpu_check.py deformed OUT.json [--budget S | --smoke]  # a deformed field
    python bench/gpu_check.py summary WORK OUT MODE   # OUT/cuda_diffs.json, summary.{json,txt}

Imports only the standard library at the top (``env`` imports numba and nnft_fast inside
``try``, ``deformed`` inside the function), so it runs, and reports, on a machine where
those do not import.
"""

import json
import os
import platform
import sys
import time
from pathlib import Path

# The steps of bench/gpu_check.sh, in order, and the bit each sets in its exit code.
STEPS = {
    "setup": 1,
    "env": 2,
    "test_cuda": 4,
    "test_cuda_field": 8,
    "test_cuda_ntk": 16,
    "test_cuda_deformation": 64,
    "test_cuda_rng": 256,
    "bench_gpu": 32,
    "bench_deformed": 128,
}
# What every step runs (tests/test_gpu_check.py checks that each exists).
TEST_MODULES = (
    "tests/test_cuda.py",
    "tests/test_cuda_field.py",
    "tests/test_cuda_ntk.py",
    "tests/test_cuda_deformation.py",
    "tests/test_cuda_rng.py",
)
TARGETS = (
    "tests/_cuda_sim_target.py",
    "tests/_cuda_sim_field.py",
    "tests/_cuda_sim_ntk.py",
    "tests/_cuda_sim_deformation.py",
    "tests/_cuda_sim_rng.py",
)
BENCH_MODULE = "bench.gpu"
# The bench_deformed step's cos-net field: d = 3, m = 1, alpha = 0, Gaussian amplitudes
# (as bench.configs F1, F2), B points uniform in the box [-half, half]^3 and lambda phi^4
# on that box (nodes None: the rule's default, 15^3 for the full size); ``check``
# networks compared, the first pilot of the timing on the GPU and on the CPU. --smoke:
# tiny, for the simulator (no timing).
DEFORMED = {
    "width": 1000,
    "cutoff": 10.0,
    "points": 16,
    "half": 0.25,
    "nodes": None,
    "check": 64,
    "pilots": {"cuda": 2000, "cpu": 100},
}
DEFORMED_SMOKE = {"width": 16, "cutoff": 2.0, "points": 3, "half": 0.5, "nodes": 3, "check": 4}
DEFORMED_COUPLING = 0.1
DEFORMED_TOL = 1e-10  # largest relative difference, CUDA vs CPU (as bench.gpu's check)
DEFORMED_BUDGET_S = 4.0


def _try(fn):
    try:
        return fn()
    except Exception as exc:  # report, never raise: this is the machine's description
        return f"unavailable: {type(exc).__name__}: {str(exc)[:300]}"


def _version(name):
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment():
    """Python, packages, CPU count, and what Numba sees of the GPU."""
    info = {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "NUMBA_ENABLE_CUDASIM": os.environ.get("NUMBA_ENABLE_CUDASIM"),
        "packages": {
            n: _version(n)
            for n in (
                "numpy",
                "scipy",
                "numba",
                "numba-cuda",
                "llvmlite",
                "h5py",
                "pytest",
                "cuda-bindings",
                "cuda-python",
                "nvidia-cuda-nvrtc",
                "nvidia-cuda-nvcc",
            )
        },
    }

    def nnft():
        import nnft_fast as nf

        return {"version": nf.__version__, "file": nf.__file__, "cuda": nf.cuda_available()}

    info["nnft_fast"] = _try(nnft)

    def device():
        from numba import config, cuda

        if config.ENABLE_CUDASIM:
            return "CUDA simulator"
        if not cuda.is_available():
            return "no CUDA device visible to Numba"
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else dev.name
        out = {"name": name, "compute_capability": list(dev.compute_capability)}
        out["driver"] = _try(lambda: list(cuda.cudadrv.driver.driver.get_version()))
        out["runtime"] = _try(lambda: list(cuda.runtime.get_version()))
        free, total = cuda.current_context().get_memory_info()
        out.update(memory_free_bytes=int(free), memory_total_bytes=int(total))
        return out

    info["device"] = _try(device)
    return info


def _relative(got, ref):
    """Largest |got - ref| / |ref|, entry by entry."""
    import numpy as np

    return float(np.max(np.abs(got - ref) / (np.abs(ref) + 1e-300)))


def _networks_per_s(net, x, kw, backend, pilot, budget):
    """(networks/s, networks) of nf.sample on ``backend``: a warm-up call (compilation),
    a pilot of ``pilot`` networks, then one call sized to ~``budget`` s by the pilot."""
    import nnft_fast as nf

    nf.sample(net, x, 2, 0, backend=backend, **kw)
    t0 = time.perf_counter()
    nf.sample(net, x, pilot, 0, backend=backend, **kw)
    n = max(pilot, round(pilot * budget / max(time.perf_counter() - t0, 1e-9)))
    t0 = time.perf_counter()
    ens = nf.sample(net, x, n, 0, backend=backend, **kw)
    assert ens.backend == backend and ens.n_networks == n
    return n / (time.perf_counter() - t0), n


def deformed(path, smoke=False, budget=DEFORMED_BUDGET_S):
    """The bench_deformed step: the deformed cos-net field DEFORMED (DEFORMED_SMOKE) on
    backend="cuda" against "cpu" -- each network's statistics and interaction s
    (``FieldRun.compute``) and nf.sample's first-order and reweighted two-point estimates,
    relative to the CPU's, at most DEFORMED_TOL -- then, on a GPU and only if they agree,
    networks/s of nf.sample on both backends (~``budget`` s each). Writes ``path`` (JSON,
    read by ``summary``); exit status 0 if the backends agree."""
    import numpy as np
    from numba import config

    import nnft_fast as nf
    from nnft_fast.field_run import FieldRun

    c = DEFORMED_SMOKE if smoke else DEFORMED
    net = nf.CosNet(3, c["width"], 1.0, c["cutoff"])
    box = (-c["half"], c["half"])
    x = np.random.default_rng(1).uniform(*box, (c["points"], 3))
    phi4 = nf.Phi4(DEFORMED_COUPLING, box, nodes=c["nodes"])
    kw = dict(observables=("two_point",), quadruples=[[0, 1, 2, 2]], deformation=phi4)
    runs = {b: FieldRun(net, x, 7, backend=b, **kw) for b in ("cuda", "cpu")}
    assert runs["cuda"].backend == "cuda", "the deformed run fell back to the CPU"
    got, ref = (runs[b].compute(100, c["check"])[0] for b in ("cuda", "cpu"))
    checks = {"statistics": _relative(got[..., :-1], ref[..., :-1])}
    checks["s"] = _relative(got[..., -1], ref[..., -1])
    ens = {b: nf.sample(net, x, c["check"], 7, backend=b, **kw) for b in ("cuda", "cpu")}
    for label in ("first_order", "reweighted"):
        estimates = [getattr(ens[b], label).two_point().value for b in ("cuda", "cpu")]
        checks[f"{label} two_point"] = _relative(*estimates)
    agree = all(v <= DEFORMED_TOL for v in checks.values())
    result = {
        "config": {k: v for k, v in c.items() if k != "pilots"},
        "nodes": int(runs["cpu"].rule.points.shape[0]),
        "checks": checks,
        "agree": agree,
        "timings": {},
    }
    print(
        f"deformed d = 3 cos-net field, N = {c['width']}, B = {c['points']}, "
        f"Q = {result['nodes']} nodes: CUDA vs CPU {checks}"
    )
    if agree and not config.ENABLE_CUDASIM:
        for backend, pilot in c["pilots"].items():
            rate, n = _networks_per_s(net, x, kw, backend, pilot, budget)
            result["timings"][backend] = {"networks_per_s": rate, "networks": n}
            print(f"  {backend}: {rate:,.0f} networks/s ({n} networks)")
    Path(path).write_text(json.dumps(result, indent=1))
    return 0 if agree else 1


def read_steps(work):
    """[(step, rc, seconds)] from WORK/steps.tsv (what the shell script recorded)."""
    rows = []
    path = Path(work) / "steps.tsv"
    if path.exists():
        for line in path.read_text().splitlines():
            name, rc, seconds = line.split("\t")
            rows.append((name, int(rc), float(seconds)))
    return rows


def merge_diffs(work):
    """{target: {case: difference}} from WORK/diffs/*.json (tests/_cuda_env.py)."""
    merged = {}
    for path in sorted((Path(work) / "diffs").glob("*.json")):
        merged[path.stem] = json.loads(path.read_text())
    return merged


def summary(work, out, mode):
    out = Path(out)
    steps = read_steps(work)
    diffs = merge_diffs(work)
    (out / "cuda_diffs.json").write_text(json.dumps(diffs, indent=1))
    bench = None
    if (out / "gpu_bench.json").exists():
        bench = json.loads((out / "gpu_bench.json").read_text())
    env = None
    if (out / "env.json").exists():
        env = json.loads((out / "env.json").read_text())
    deformed_result = None
    if (Path(work) / "deformed.json").exists():
        deformed_result = json.loads((Path(work) / "deformed.json").read_text())
    failed = [name for name, rc, _ in steps if rc != 0]
    code = sum(STEPS.get(name, 0) for name in set(failed))
    lines = [f"bench/gpu_check.sh ({mode}), {time.strftime('%Y-%m-%d %H:%M:%S %Z')}"]
    if isinstance(env, dict):
        dev = env.get("device")
        dev = dev.get("name") if isinstance(dev, dict) else dev
        pk = env.get("packages", {})
        lines.append(
            f"device: {dev}; python {env.get('python')}, numba {pk.get('numba')}, "
            f"numba-cuda {pk.get('numba-cuda')}, numpy {pk.get('numpy')}"
        )
    lines.append("steps (exit status, seconds):")
    for name, rc, seconds in steps:
        note = {0: "ok", 124: "TIMED OUT", 137: "KILLED (timeout)", 125: "SKIPPED (no time)"}
        lines.append(f"  {name:16s} {rc:4d}  {seconds:6.0f} s  {note.get(rc, 'FAILED')}")
    for target, cases in diffs.items():
        finite = [v for v in cases.values() if isinstance(v, (int, float))]
        worst = max(
            (v for k, v in cases.items() if not k.startswith("control")), default=float("nan")
        )
        lines.append(
            f"  {target}: {len(cases)} cases, largest difference (controls excluded) "
            f"{worst:.2e}{'' if len(finite) == len(cases) else ' (non-numbers present)'}"
        )
    if bench:
        for key, worst in bench.get("checks", {}).items():
            lines.append(f"  check {key:32s} {worst:.2e}")
        for t in bench.get("timings", []):
            lines.append(
                f"  {t['config']:8s} {t['init'] or '-':10s} {t['method']:9s} GPU "
                f"{t['gpu']:12,.0f}/s  CPU {t['cpu']:10,.0f}/s  GPU/CPU {t['gpu'] / t['cpu']:7.1f}"
            )
        if "copy_bandwidth_gb_s" in bench:
            lines.append(
                f"  copy bandwidth {bench['copy_bandwidth_gb_s']:,.0f} GB/s; generator "
                f"{bench['generator_normals_per_s']:.3e} normals/s"
            )
    if deformed_result:
        for key, worst in deformed_result["checks"].items():
            lines.append(f"  check deformed {key:23s} {worst:.2e}")
        timings = deformed_result["timings"]
        if timings:
            gpu, cpu = timings["cuda"]["networks_per_s"], timings["cpu"]["networks_per_s"]
            lines.append(
                f"  deformed (Q = {deformed_result['nodes']}) GPU {gpu:12,.0f}/s  CPU "
                f"{cpu:10,.0f}/s  GPU/CPU {gpu / cpu:7.1f}"
            )
    lines.append(
        f"exit code {code}: "
        + ("all steps passed" if not failed else "failed: " + ", ".join(failed))
        + " (bits: "
        + ", ".join(f"{v} {k}" for k, v in STEPS.items())
        + ")"
    )
    text = "\n".join(lines) + "\n"
    (out / "summary.txt").write_text(text)
    (out / "summary.json").write_text(
        json.dumps(
            {
                "mode": mode,
                "exit_code": code,
                "failed": failed,
                "steps": [{"step": n, "rc": rc, "seconds": s} for n, rc, s in steps],
                "bits": STEPS,
                "environment": env,
                "deformed": deformed_result,
            },
            indent=1,
        )
    )
    print(text, end="")
    return code


def main(argv):
    if len(argv) >= 2 and argv[0] == "env":
        text = json.dumps(environment(), indent=1)
        Path(argv[1]).write_text(text)
        print(text)
        return 0
    if len(argv) >= 2 and argv[0] == "deformed":
        options = {"smoke": "--smoke" in argv}
        if "--budget" in argv:
            options["budget"] = float(argv[argv.index("--budget") + 1])
        return deformed(argv[1], **options)
    if len(argv) >= 3 and argv[0] == "summary":
        return summary(argv[1], argv[2], argv[3] if len(argv) > 3 else "gpu")
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
