"""How test_cuda*.py run their ``_cuda_sim_*.py`` targets (a fresh interpreter each).

By default on the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``: CI, no GPU). With
``NNFT_CUDA_REAL_GPU=1`` on the machine's GPU instead (``NUMBA_ENABLE_CUDASIM=0``): the same
kernels, the same comparisons with the CPU kernels and the same limits, for real
(bench/gpu_check.sh). With ``NNFT_CUDA_DIFFS=DIR`` each target's {case: difference} is also
written to DIR/<target>.<gpu|sim>.json.
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def on_real_gpu():
    return os.environ.get("NNFT_CUDA_REAL_GPU") == "1"


def run_target(script):
    """{case: difference} printed by ``script`` (a file beside this one) as JSON."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0" if on_real_gpu() else "1")
    # No timeout: the simulator runs 20x slower on a loaded machine, and that is no failure.
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, script)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    diffs = json.loads(done.stdout)
    folder = os.environ.get("NNFT_CUDA_DIFFS")
    if folder:
        stem = os.path.splitext(script)[0].lstrip("_")
        name = f"{stem}.{'gpu' if on_real_gpu() else 'sim'}.json"
        with open(os.path.join(folder, name), "w") as f:
            json.dump(diffs, f, indent=1)
    return diffs
