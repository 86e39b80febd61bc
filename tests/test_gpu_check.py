"""bench/gpu_check.sh, the one prepared GPU check (bench/README.md): its syntax, that every
test and bench target it names exists, its plan (--dry-run), and the summary's exit code.
Needs the repository beside tests/ (CI copies only tests/, examples/, README.md and
pyproject.toml next to the installed wheel: there it is skipped)."""

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.sh"
HELPER = REPO / "bench" / "gpu_check.py"

pytestmark = [
    pytest.mark.skipif(
        not SCRIPT.exists(), reason="bench/ is not beside tests/ (CI copies tests/ alone)"
    ),
    pytest.mark.skipif(shutil.which("bash") is None, reason="no bash"),
]


def helper():
    spec = importlib.util.spec_from_file_location("gpu_check_helper", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_syntax():
    done = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_named_target_exists():
    text = SCRIPT.read_text()
    files = set(re.findall(r"\b((?:tests|bench)/[\w/]+\.(?:py|sh))\b", text))
    modules = set(re.findall(r"-m (bench\.\w+)", text))
    h = helper()
    files |= set(h.TEST_MODULES) | set(h.TARGETS)
    modules.add(h.BENCH_MODULE)
    assert {"tests/test_cuda.py", "bench/gpu_check.py"} <= files and "bench.gpu" in modules
    for name in sorted(files):
        assert (REPO / name).is_file(), name
    for name in sorted(modules):
        assert (REPO / (name.replace(".", "/") + ".py")).is_file(), name
    for module, target in zip(h.TEST_MODULES, h.TARGETS):
        # each module runs its target through tests/_cuda_env.py (the simulator or the GPU)
        assert f'run_target("{Path(target).name}")' in (REPO / module).read_text(), module
        assert module in text, module


def test_exit_bits_agree_with_the_helper():
    text = SCRIPT.read_text()
    bits = dict(re.findall(r"(\w+)\) bit=(\d+) ;;", text))
    assert {k: int(v) for k, v in bits.items()} == helper().STEPS


def test_dry_run_plans_every_step(tmp_path):
    done = subprocess.run(
        ["bash", str(SCRIPT), str(tmp_path / "out"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for step in helper().STEPS:
        assert f"== {step} " in done.stdout, step
    assert "NNFT_CUDA_REAL_GPU=1" in done.stdout and "--budget" in done.stdout
    assert "exit 0" in done.stdout.splitlines()[-1]


def test_summary_exit_code_is_the_failed_bits(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    (work / "diffs").mkdir(parents=True)
    out.mkdir()
    rows = [("setup", 0), ("env", 0), ("test_cuda", 1), ("test_cuda_field", 0)]
    rows += [("test_cuda_ntk", 124), ("bench_gpu", 0)]
    (work / "steps.tsv").write_text("".join(f"{n}\t{rc}\t1\n" for n, rc in rows))
    (work / "diffs" / "cuda_sim_target.gpu.json").write_text(json.dumps({"stats a": 1e-15}))
    code = helper().summary(work, out, "gpu")
    assert code == 4 + 16
    summary = json.loads((out / "summary.json").read_text())
    assert summary["failed"] == ["test_cuda", "test_cuda_ntk"]
    assert "TIMED OUT" in (out / "summary.txt").read_text()
    assert json.loads((out / "cuda_diffs.json").read_text()) == {
        "cuda_sim_target.gpu": {"stats a": 1e-15}
    }
