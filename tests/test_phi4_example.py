"""examples/phi4.py runs on a small ensemble and writes its tables and figure."""

import numpy as np
import pytest

import nnft_fast as nf

from ._examples import load_example


def test_phi4_example_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    load_example("phi4").main(str(tmp_path), 4_000)
    out = capsys.readouterr().out
    assert out.count("| quadruple | tree level | first order (pull) |") == 2
    assert out.count("second order, (slope at λ = 0.2 - first order)") == 2
    assert "Locality on the 7 nodes" in out and "not local" in out
    assert (tmp_path / "phi4.png").stat().st_size > 10_000


def test_one_loop_is_the_second_derivative_of_a_gaussian_field():
    """one_loop against (1/2) d²G4c/dλ² of exp(-(λ/4!) Σ w φ⁴) for a Gaussian field on two
    nodes and one point, by exact Gauss-Hermite integration at small ±λ."""
    phi4 = load_example("phi4")
    net = nf.CosNet(1, 50, 1.0, 2.0)
    rule = nf.Phi4(0.1, (-1.0, 1.0), nodes=2).rule(net)
    x = np.array([[0.3]])
    points = np.vstack([x, rule.points])
    g = nf.theory.cosnet_propagator(net, np.abs(points - points.T))
    t, h = np.polynomial.hermite_e.hermegauss(40)
    grid = np.array(np.meshgrid(t, t, t, indexing="ij")).reshape(3, -1)
    weight = np.prod(np.array(np.meshgrid(h, h, h, indexing="ij")).reshape(3, -1), axis=0)
    phi = np.linalg.cholesky(g) @ grid  # (3, K) Gaussian with covariance g

    def g4c(coupling):
        p = weight * np.exp(-coupling / 24.0 * (rule.weights @ phi[1:] ** 4))
        p = p / p.sum()
        return p @ phi[0] ** 4 - 3.0 * (p @ phi[0] ** 2) ** 2

    eps = 1e-2
    second = (g4c(eps) - 2.0 * g4c(0.0) + g4c(-eps)) / eps**2
    got = phi4.one_loop(net, x, rule, [(0, 0, 0, 0)])[0]
    np.testing.assert_allclose(got, 0.5 * second, rtol=1e-3)
