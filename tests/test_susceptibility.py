"""Measured susceptibilities (nnft_fast.susceptibility) against infinite width."""

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.susceptibility import (
    find_probes,
    measured_susceptibilities,
    predicted_susceptibilities,
)

X0 = np.array([1.0, 0.5, -0.5, 0.2]) * 1.2
TURN = 0.02  # radians


def probe_inputs(step=0.01, turn=TURN):
    """Input 0, a parallel probe (1 + step) x_0 and x_0 turned by ``turn`` (same norm)."""
    e = np.array([0.0, 1.0, 0.0, 0.0])
    e -= e @ X0 / (X0 @ X0) * X0
    e *= np.linalg.norm(X0) / np.linalg.norm(e)
    return np.array([X0, (1.0 + step) * X0, np.cos(turn) * X0 + np.sin(turn) * e])


def test_probes_are_found_and_only_nearby_ones():
    probes = find_probes(probe_inputs())
    assert (probes.parallel, probes.perpendicular) == (1, 2)
    assert probes.parallel_step == pytest.approx(0.01)
    assert probes.perpendicular_step == pytest.approx(2 * np.sin(TURN / 2))
    far = find_probes(probe_inputs(step=0.5, turn=0.5))
    assert far.parallel is None and far.perpendicular is None
    unequal = probe_inputs()
    unequal[2] *= 1.001  # neither parallel nor of the same norm
    assert find_probes(unequal).perpendicular is None


def distance(k, c):
    return k[0, 0] + k[c, c] - 2.0 * k[0, c]


@pytest.mark.parametrize(
    "activation,init,cw",
    [("tanh", "gaussian", 1.0), ("tanh", "orthogonal", 1.5), ("relu", "gaussian", 2.0)],
)
def test_measured_susceptibilities_match_infinite_width(activation, init, cw):
    """At width 256 the measured ratios of layer 3 to layer 2 equal the same finite
    differences of the infinite-width kernels (nf.predict on the same inputs) within 4
    standard errors plus 1/n (the order of the finite-width corrections), and the
    prediction at the measured kernel equals them to O(step) + O(1/n)."""
    n = 256
    x = probe_inputs()
    net = nf.Network((4, n, n, n), activation, init, cw=cw)
    ens = nf.sample(net, x, 2000, seed=11, observables=("two_point",))
    par, perp = measured_susceptibilities(ens, 3)
    kernels = nf.predict(net, x).kernels
    exact_par = (kernels[2][1, 1] - kernels[2][0, 0]) / (kernels[1][1, 1] - kernels[1][0, 0])
    exact_perp = distance(kernels[2], 2) / distance(kernels[1], 2)
    for estimate, exact in ((par, exact_par), (perp, exact_perp)):
        assert abs(estimate.value - exact) <= 4.0 * estimate.error + abs(exact) / n
        assert 0.0 < estimate.error < 0.01 * abs(exact)
    predicted = predicted_susceptibilities(ens, 3)
    assert predicted == pytest.approx((exact_par, exact_perp), rel=0.01)


def test_relu_chi_par_is_cw_over_two_at_any_width():
    """ReLU with C_b = 0: z_b = s z_0 in every network, so the ratio is K^(3)/K^(2) of
    input 0, C_W / 2 in expectation at any width."""
    net = nf.Network((4, 8, 8, 8), "relu", "gaussian", cw=1.6)
    ens = nf.sample(net, probe_inputs(), 4000, seed=2, observables=("two_point",))
    par, _ = measured_susceptibilities(ens, 3)
    assert abs(par.value - 0.8) < 4.0 * par.error


def test_without_probes_nothing_is_measured():
    net = nf.Network((4, 8, 8), "tanh")
    ens = nf.sample(net, probe_inputs(step=0.5, turn=0.5), 100, seed=0)
    assert measured_susceptibilities(ens, 2) == (None, None)
    assert all(np.isfinite(predicted_susceptibilities(ens, 2)))
    assert all(np.isnan(predicted_susceptibilities(ens, 1)))
