"""bench/numpy_projected.py (the same-algorithm NumPy baseline of bench.matrix) draws
nnft_fast's projected law: its K and connected four-point functions agree with
``nf.sample(method="projected")`` by bench.agreement's z-scores, for Gaussian and
orthogonal weights, on a tiny config that takes every path (an explicit first layer
with n_0 < B, rank-deficient Gram matrices, a narrowing orthogonal layer, biases), and
two wrong laws are rejected (negative controls).

The module lives in bench/, which CI does not copy next to the installed wheel
(.ci/run copies tests/, examples/, README.md, pyproject.toml): there it is skipped.
"""

import numpy as np
import pytest

import nnft_fast as nf

from ._zscores import Z_PASS, Z_REJECT

projected = pytest.importorskip(
    "bench.projected", reason="bench/ is not importable here (CI copies only tests/)"
)
agreement = pytest.importorskip("bench.agreement")
npp = pytest.importorskip("bench.numpy_projected")

# n_0 = 2 < B = 3: layer 1 explicit; 16 -> 4 narrows (orthogonal: the top 4 rows of a
# 16-row frame); 4 -> 12 projected (ReLU of 4 units makes some Gram matrices singular:
# the eigh path)
WIDTHS = (2, 16, 4, 12)
CW, CB = 2.0, 0.1
N = 8000
X = np.array([[1.0, 0.2], [-0.4, 0.9], [0.5, 0.5]])


def nnft(init, seed=11):
    net = nf.Network(WIDTHS, "relu", init, cw=CW, cb=CB)
    return nf.sample(
        net, X, N, seed=seed, method="projected", observables=("two_point", "four_point")
    )


def baseline(init, seed=5):
    runner = projected.NumpyProjected(
        WIDTHS, X, init=init, cw=CW, cb=CB, seed=seed, chunk=1000, threads=2
    )
    runner.run(N)
    return runner.as_ensemble()


def worst(a, b):
    return agreement.worst(agreement.compare(a, b))


pytestmark = pytest.mark.filterwarnings("ignore::nnft_fast.UnreliableErrorWarning")


@pytest.fixture(scope="module")
def reference():
    return {init: nnft(init) for init in ("gaussian", "orthogonal")}


@pytest.mark.parametrize("init", ["gaussian", "orthogonal"])
def test_numpy_projected_agrees(reference, init):
    z = worst(reference[init], baseline(init))
    assert z < Z_PASS, f"{init}: max |z_pt| = {z:.2f}"


def test_gaussian_against_orthogonal_rejected(reference):
    z = worst(reference["orthogonal"], baseline("gaussian"))
    assert z > Z_REJECT, f"Gaussian baseline vs orthogonal nnft_fast: max |z_pt| = {z:.2f}"


def test_missing_narrowing_correction_rejected(reference, monkeypatch):
    """An (n_out x B) Haar frame scaled to the right entry variance instead of the top
    n_out rows of a max(n_out, n_in)-row frame: right K, wrong fluctuations."""

    def wrong(rng, count, n_out, n_in, k, cw):
        return np.sqrt(cw / n_in * n_out) * npp.haar_frames(rng, count, n_out, k)

    monkeypatch.setattr(npp, "projected_frames", wrong)
    z = worst(reference["orthogonal"], baseline("orthogonal"))
    assert z > Z_REJECT, f"frame without the narrowing correction: max |z_pt| = {z:.2f}"


def test_tables_and_singular_gram():
    """The module's own tables are MomentLayout's; a singular Gram matrix is factorised
    exactly (R^T R = S^T S) where Cholesky fails."""
    for b in (1, 3, 4):
        projected.check_tables(npp.statistic_tables(b, True), b, True)
    s = np.random.default_rng(0).standard_normal((4, 6, 3))
    s[1, :, 2] = s[1, :, 0]  # repeated column: rank 2
    s[2] = 0.0  # every unit dead
    r = npp.gram_factor(s)
    gram = np.swapaxes(s, -1, -2) @ s
    np.testing.assert_allclose(np.swapaxes(r, -1, -2) @ r, gram, atol=1e-12)
