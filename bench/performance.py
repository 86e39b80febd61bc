"""The README's performance section from one run: the benchmark matrix, the many-points
sweeps and the cos-net fields measured back to back on one machine, then the section
between ``<!-- bench.performance: begin -->`` and ``<!-- bench.performance: end -->``
rewritten as a whole from what this run wrote (``bench.readme``).

    python -m bench.performance            # ~20 min on 2 cores: bench/matrix.*,
                                           # bench/scaling_points.*, bench/fields.*, README.md
    python -m bench.performance --smoke    # the wiring (~2 min): files in a temporary
                                           # folder, README.md untouched

Steps (each also runnable alone, with the same arguments):
    python -m bench.matrix --json bench/matrix.json                  (printout bench/matrix.txt)
    python -m bench.scaling --points --json bench/scaling_points.json --png bench/scaling_points.png
    python -m bench.fields --quick --json bench/fields.json --txt bench/fields.txt
    python -m bench.readme --matrix bench/matrix.json --scaling bench/scaling_points.json \\
        --fields bench/fields.json
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from . import fields, matrix, readme, scaling
from .harness import REPO, printed

HERE = Path(__file__).resolve().parent


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="python -m bench.performance",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the wiring")
    ap.add_argument("--readme", default=str(REPO / "README.md"), help="the README to rewrite")
    args = ap.parse_args(argv)
    out = Path(tempfile.mkdtemp(prefix="nnft-performance-")) if args.smoke else HERE
    smoke = ["--smoke"] if args.smoke else []
    paths = {name: out / f"{name}.json" for name in ("matrix", "scaling_points", "fields")}
    started = time.perf_counter()
    statuses = [
        printed(matrix.main, smoke + ["--json", str(paths["matrix"])], out / "matrix.txt"),
        printed(
            scaling.main,
            smoke
            + ["--points", "--json", str(paths["scaling_points"])]
            + ["--png", str(out / "scaling_points.png")],
            out / "scaling_points.txt",
        ),
        fields.main(
            (smoke or ["--quick"])
            + ["--json", str(paths["fields"]), "--txt", str(out / "fields.txt")]
        ),
    ]
    print(f"the three runs took {(time.perf_counter() - started) / 60:.1f} min")
    text = readme.performance_section(
        *(readme.load(paths[k]) for k in ("matrix", "scaling_points", "fields")),
        sources={k: readme.shown_path(p) for k, p in paths.items()},
    )
    if args.smoke:
        print(text)
        print(f"(--smoke: {args.readme} untouched; files in {out})")
    else:
        readme.rewrite_file(args.readme, text)
        print(f"rewrote the performance section of {args.readme}")
    return max(statuses)


if __name__ == "__main__":
    sys.exit(main())
