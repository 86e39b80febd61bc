"""The timing harness every benchmark script shares.

A ``Method`` is one timed workload. Its life in a script:

    m.warmup()                                   # compile / first call, never timed
    m.calibrate(target_s, n_start, n_min, n_max) # units per repeat, ~target_s each
    round_robin(methods, repeats, "label")       # repeat r of every method, then r + 1...
    m.rate, m.best                               # median and best units/s of the repeats
    m.rate / baseline.rate                       # a ratio: both measured in this one run

Repeats run interleaved round-robin so that machine noise hits every method alike;
figures are medians (``rate``) or best-of (``best``), and every comparison is a ratio of
figures of the same run. A subclass implements ``work(n, keep)``: do n units (networks
unless ``unit`` says otherwise); with keep=True the networks count for the agreement
check (``ensemble``). ``CallMethod`` wraps a plain function.

Also here: ``parser`` (the options every script takes: --smoke, --json), ``write_json``
(the one JSON layout: benchmark, arguments, machine, wall time, then the script's
figures), ``run_python`` (a fresh interpreter, for first-call and peak-memory figures),
``fmt_rate``.
"""

import argparse
import contextlib
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .machine import blas_threads

REPO = Path(__file__).resolve().parents[1]


def timed(fn, *args, **kwargs):
    """(seconds, result) of one call."""
    t0 = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t0, result


def best_time(fn, repeats):
    """Shortest of ``repeats`` calls of fn(), in seconds."""
    return min(timed(fn)[0] for _ in range(repeats))


class Method:
    """A timed workload (module docstring). ``per_unit``: what one unit counts (e.g. the
    normals of one call, the networks of one ``nf.sample`` call), so that ``rates`` are
    per second of those; ``blas``: NumPy's OpenBLAS threads while it runs (None: as is);
    ``init``/``kind``: its weight law and "nnft_fast" or "baseline" (bench.matrix)."""

    unit = "networks"
    kind = "nnft_fast"
    warmup_n = 2

    def __init__(self, key, label, *, per_unit=1, blas=None, init=None):
        self.key, self.label = key, label
        self.per_unit, self.blas, self.init = per_unit, blas, init
        self.n_per_repeat = None  # units per timed repeat (``calibrate``)
        self.times, self.counts = [], []  # seconds and units of every timed repeat
        self.first_call_s = None
        self.next_network = 0  # networks kept for the agreement check

    def work(self, n, keep):
        raise NotImplementedError

    @property
    def ensemble(self):
        """The kept networks' statistics as an ``nf.Ensemble`` (None: none kept, or a
        method without per-layer moments)."""
        return None

    def _timed(self, n, keep):
        with blas_threads(self.blas):
            return timed(self.work, n, keep)[0]

    def warmup(self):
        """Compile / first call, outside every timed region."""
        self.first_call_s = self._timed(self.warmup_n, keep=False)

    def pilot(self, n):
        return self._timed(n, keep=False)

    def repeat(self):
        dt = self._timed(self.n_per_repeat, keep=True)
        self.times.append(dt)
        self.counts.append(self.n_per_repeat)
        return dt

    def top_up(self, n_min):
        """Untimed extra networks so the agreement check has at least n_min of them."""
        missing = n_min - self.next_network
        if missing > 0:
            self._timed(missing, keep=True)
        return max(missing, 0)

    def calibrate(self, target_s, n_start, n_min, n_max):
        """Grow n geometrically until a pilot takes >= target/4, then size the repeats."""
        n = n_start
        while True:
            dt = self.pilot(n)
            if dt >= 0.25 * target_s or n >= n_max:
                break
            n = min(n_max, max(n + 1, int(n * min(8.0, 0.3 * target_s / max(dt, 1e-4)))))
        self.n_per_repeat = int(min(n_max, max(n_min, math.ceil(n * target_s / dt))))
        return self.n_per_repeat

    @property
    def rates(self):
        return [c * self.per_unit / t for c, t in zip(self.counts, self.times)]

    @property
    def rate(self):
        """Median per second over the repeats."""
        return statistics.median(self.rates)

    @property
    def best(self):
        """Best per second over the repeats (best-of)."""
        return max(self.rates)

    def to_json(self):
        return {
            "label": self.label,
            "unit": self.unit,
            "init": self.init,
            "kind": self.kind,
            "n_per_repeat": self.n_per_repeat,
            "counts": self.counts,
            "times_s": self.times,
            "rates": self.rates,
            "median_rate": self.rate,
            "best_rate": self.best,
            "first_call_s": self.first_call_s,
        }


class CallMethod(Method):
    """``fn(n)`` timed as n units; ``n``: a fixed size per repeat (no calibration);
    ``warmup_fn``: the untimed first call (default fn(2)). ``result``: fn's last value."""

    def __init__(self, key, label, fn, *, n=None, warmup_fn=None, **kw):
        super().__init__(key, label, **kw)
        self.fn = fn
        self.n_per_repeat = n
        self.warmup_fn = warmup_fn
        self.result = None

    def warmup(self):
        if self.warmup_fn is None:
            return super().warmup()
        self.first_call_s = timed(self.warmup_fn)[0]

    def work(self, n, keep):
        self.result = self.fn(n)
        if keep:
            self.next_network += n


def round_robin(methods, repeats, label):
    """``repeats`` rounds; each round one repeat of every method in turn."""
    for rep in range(repeats):
        t0 = time.perf_counter()
        for m in methods:
            m.repeat()
        print(f"  {label} round {rep + 1}/{repeats}: {time.perf_counter() - t0:.1f} s", flush=True)


def fmt_rate(r):
    if r >= 100:
        return f"{r:,.0f}"
    if r >= 10:
        return f"{r:.1f}"
    return f"{r:.2f}"


# --------------------------------------------------------------------------------------
# Command line and results
# --------------------------------------------------------------------------------------
def parser(module, doc, quick=None):
    """The parser of ``python -m <module>``: --smoke and --json, and --quick when
    ``quick`` (its help) is given."""
    ap = argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if quick:
        ap.add_argument("--quick", action="store_true", help=quick)
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="tiny sizes and very short repeats: checks the script's wiring; "
        "the figures mean nothing",
    )
    ap.add_argument("--json", metavar="PATH", help="also write every number as JSON")
    return ap


def finish(started):
    """Print the wall time and the load average at the end; return the wall time (s)."""
    elapsed = time.perf_counter() - started
    print(
        f"total wall time {elapsed:.0f} s; load average at end "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    return elapsed


def write_json(path, benchmark, args, info, wall_time_s, **figures):
    """The one JSON layout: {"benchmark", "arguments", "quick", "smoke", "machine",
    "wall_time_s", **figures} (``figures``: the script's own keys)."""
    if path is None:
        return
    arguments = vars(args)
    result = {
        "benchmark": benchmark,
        "arguments": arguments,
        "quick": bool(arguments.get("quick", False)),
        "smoke": bool(arguments.get("smoke", False)),
        "machine": info,
        "wall_time_s": wall_time_s,
        **figures,
    }
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {path}")


def run_python(code, *argv, env=None):
    """Run ``code`` in a fresh interpreter (repository root as cwd and on PYTHONPATH, more
    variables from ``env``); return the JSON object its last line of output prints."""
    full = dict(os.environ, **(env or {}))
    full["PYTHONPATH"] = os.pathsep.join([str(REPO)] + [p for p in [full.get("PYTHONPATH")] if p])
    res = subprocess.run(
        [sys.executable, "-c", code, *map(str, argv)],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(res.stdout.strip().splitlines()[-1])


class Tee(io.TextIOBase):
    """stdout, also kept for a text file."""

    def __init__(self, stream):
        self.stream, self.kept = stream, io.StringIO()

    def write(self, s):
        self.kept.write(s)
        return self.stream.write(s)

    def flush(self):
        self.stream.flush()


def printed(fn, arg, txt):
    """``fn(arg)`` with its printout also written to ``txt`` (None: not written); its
    return value."""
    tee = Tee(sys.stdout)
    with contextlib.redirect_stdout(tee):
        result = fn(arg)
    if txt:
        Path(txt).write_text(tee.kept.getvalue())
    return result
