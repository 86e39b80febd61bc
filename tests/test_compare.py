"""nf.predict / nf.compare: z-score tables of measured ensembles against theory."""

import dataclasses

import numpy as np
import pytest

import nnft_fast as nf

from ._examples import load_example

X = np.array([[1.0, 0.3, -0.5], [0.2, -1.0, 0.4]])


def test_compare_exact_layers_pass_and_wrong_prediction_fails():
    """Gaussian weights: K^(1), K^(2) (ReLU arc-cosine) and V^(1) = 0, V^(2) are exact at
    any width, so |z| stays small; a 5% error in the predicted kernel is rejected."""
    net = nf.Network((3, 16, 16), "relu", "gaussian", cw=2.0, cb=0.1)
    ens = nf.sample(net, X, 60_000, seed=31)
    result = nf.compare(ens)
    assert [(r.layer, r.observable) for r in result.rows] == [
        (1, "two_point"),
        (1, "vertex"),
        (2, "two_point"),
        (2, "vertex"),
    ]
    assert result.max_abs_z() < 4.5
    assert result.zscores["vertex", 2].shape == (2, 2, 2, 2)
    table = result.table()
    assert table.count("\n") == 5 and "| 2 | vertex |" in table
    prediction = nf.predict(net, X)
    wrong = dataclasses.replace(prediction, kernels=[1.05 * k for k in prediction.kernels])
    assert nf.compare(ens, wrong).max_abs_z("two_point") > 10


def test_compare_orthogonal_exact_kernel_has_zero_error():
    """Haar layer 1 on one input: every network has K^(1) exactly (|Ox| = |x|): error 0
    and z = 0 instead of 0/0; the vertex rows use the Haar recursion."""
    net = nf.Network((4, 8, 8), "tanh", "orthogonal", cw=1.0)
    ens = nf.sample(net, np.array([[0.5, -1.0, 0.3, 0.8]]), 2_000, seed=3)
    result = nf.compare(ens)
    first = result.rows[0]
    assert first.observable == "two_point" and first.max_abs_z == 0.0
    assert first.error < 1e-12 * first.predicted
    assert np.isfinite(result.max_abs_z())


def test_compare_without_vertex_theory_and_bad_input():
    net = nf.Network((3, 8, 8), "relu", "uniform", cw=2.0)  # no vertex recursion for uniform
    ens = nf.sample(net, X, 500, seed=1)
    assert nf.predict(net, X).vertices is None
    assert {r.observable for r in nf.compare(ens).rows} == {"two_point"}
    with pytest.raises(TypeError):
        nf.compare(ens, prediction={"kernels": []})
    short = nf.predict(nf.Network((3, 8), "relu", "uniform", cw=2.0), X)
    with pytest.raises(ValueError, match="layers"):
        nf.compare(ens, short)


def test_report_overlays_vertex_prediction(tmp_path):
    """The report's table and vertex plot carry the leading-order V/K^2 line."""
    pytest.importorskip("matplotlib")
    from nnft_fast.report import per_layer, write_report

    net = nf.Network((3, 32, 32, 32), "relu", "gaussian", cw=2.0)
    ens = nf.sample(net, X[:1], 3_000, seed=2)
    rows = per_layer(ens)
    np.testing.assert_allclose(rows["VK2_theory"], [0.0, 5.0, 10.0], atol=1e-6)  # 5(l-1)
    paths = write_report([ens], tmp_path)
    summary = open(paths["summary"]).read()
    assert "V/K^2 leading 1/n" in summary and "| 3 |" in summary
    assert summary.split("| 3 |")[1].split("\n")[0].strip().endswith("| 10 |")


def test_day_kahn_roberts_example_runs(tmp_path, capsys):
    """examples/day_kahn_roberts.py end to end on small ensembles: the vertex z-score
    tables, the NTK fluctuation tables with their predictions, the orthogonal-against-
    Gaussian answer and both reports."""
    pytest.importorskip("matplotlib")
    load_example("day_kahn_roberts").main(str(tmp_path), 600, 60)
    out = capsys.readouterr().out
    assert out.count("| 8 | vertex |") == 4  # one table per ensemble, all layers
    assert out.count("| layer | A/Theta^2 | leading 1/n | z | B/Theta^2 |") == 4
    answer = out.split("Do orthogonal weights tame the NTK fluctuations?")[1]
    # ReLU layer 8 closed forms: Gaussian B/Theta^2 = 7 * 15 / 24, Haar half of it
    relu_b = next(line for line in answer.splitlines() if line.startswith("| relu B/Theta^2"))
    assert [c.strip() for c in relu_b.split("|")[1:-1]][2::3] == ["4.375", "2.188"]
    assert (tmp_path / "vertex.png").stat().st_size > 10_000
    assert (tmp_path / "ntk" / "ntk_fluctuations.png").stat().st_size > 10_000
