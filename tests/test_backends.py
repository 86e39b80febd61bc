"""Backend choice (docs/architecture.md#backends): "cpu" | "cuda" | "auto", errors and
provenance, on a machine without a GPU. The CUDA path itself runs under the simulator in
test_cuda.py."""

import importlib.util
import subprocess
import sys

import h5py
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import backends
from nnft_fast.run import EnsembleRun

from .test_cli import SMALL, run_cli, write_config

NET = nf.Network((3, 6, 5), "tanh", "gaussian", 1.5, 0.1)
X = np.array([[1.0, 0.5, -0.5], [0.2, -1.0, 0.3]])


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(backends, "cuda_available", lambda: False)


@pytest.fixture
def fake_gpu(monkeypatch):
    """Numba 'sees' a GPU: only the choice of backend is tested, nothing is launched."""
    pytest.importorskip("numba_cuda", reason="the 'cuda' extra is not installed")
    monkeypatch.setattr(backends, "cuda_available", lambda: True)


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend must be one of"):
        nf.sample(NET, X, 4, backend="gpu")


def test_cuda_without_gpu_is_a_clear_error(no_gpu):
    with pytest.raises(nf.BackendUnavailable, match="no CUDA GPU"):
        nf.sample(NET, X, 4, backend="cuda")


def test_cuda_without_the_extra_names_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        backends.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "numba_cuda" else real(name, *a),
    )
    assert not backends.cuda_available()
    with pytest.raises(nf.BackendUnavailable, match=r"nnft_fast\[cuda\]"):
        nf.sample(NET, X, 4, backend="cuda")


def test_auto_without_gpu_runs_on_the_cpu_and_says_so(no_gpu, tmp_path):
    auto = nf.sample(NET, X, 6, 2, backend="auto")
    cpu = nf.sample(NET, X, 6, 2, backend="cpu")
    assert auto.backend == cpu.backend == "cpu"
    assert np.array_equal(auto.accumulator.block_sums, cpu.accumulator.block_sums)
    path = tmp_path / "auto.h5"
    nf.sample(NET, X, 6, 2, store=path)
    with h5py.File(path, "r") as f:
        assert f.attrs["backend"].decode() == "cpu"  # fixed-length string (schema 2)
    assert nf.open(path).backend == "cpu"


def test_cuda_refuses_what_its_kernels_do_not_cover(fake_gpu):
    with pytest.raises(ValueError, match="float64 only"):
        EnsembleRun(NET, X, 0, dtype=np.float32, backend="cuda")
    cube = nf.Activation("cube", lambda z: z * z * z, lambda z: 3.0 * z * z)
    user = nf.Network((3, 6, 5), cube, "gaussian", 1.0)
    with pytest.raises(ValueError, match="built-in activations"):
        EnsembleRun(user, X, 0, backend="cuda")
    with pytest.raises(ValueError, match="at most 8 inputs"):
        EnsembleRun(NET, np.ones((9, 3)), 0, backend="cuda")


def test_auto_falls_back_to_the_cpu_where_the_gpu_kernels_stop(fake_gpu):
    assert EnsembleRun(NET, X, 0, backend="auto").backend == "cuda"
    assert EnsembleRun(NET, X, 0, dtype=np.float32, backend="auto").backend == "cpu"
    assert EnsembleRun(NET, np.ones((9, 3)), 0, backend="auto").backend == "cpu"


def test_cli_backend_flag(no_gpu, tmp_path, capsys):
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=20))
    code, _, err = run_cli(
        ["run", cfg, "--out", str(tmp_path / "a.h5"), "--backend", "cuda"], capsys
    )
    assert code == 1 and "no CUDA GPU" in err  # the machine, not the command
    assert not (tmp_path / "a.h5").exists()
    code, out, _ = run_cli(
        ["run", cfg, "--out", str(tmp_path / "b.h5"), "--backend", "auto"], capsys
    )
    assert code == 0 and "backend: cpu" in out


def test_importing_and_cpu_runs_never_import_numba_cuda():
    code = (
        "import sys, numpy as np, nnft_fast as nf\n"
        "net = nf.Network((3, 4), 'relu', 'gaussian', 2.0)\n"
        "nf.sample(net, np.ones((1, 3)), 4, backend='cpu')\n"
        "print(any(m.startswith('numba.cuda') or m.startswith('numba_cuda.numba.cuda')"
        " for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
