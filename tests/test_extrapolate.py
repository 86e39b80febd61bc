"""nf.extrapolate: the weighted least-squares fit in 1/N and its error propagation."""

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import Estimate, extrapolate

WIDTHS = (8, 16, 32, 64, 128)


def _synthetic(c, widths, sigma, replicas, seed):
    """{N: Estimate} of c0 + c1/N + c2/N**2 + noise, noise ~ sigma_N (one value per
    replica, shape (replicas,))."""
    rng = np.random.default_rng(seed)
    out = {}
    for n, s in zip(widths, sigma):
        mean = sum(ck / n**k for k, ck in enumerate(c))
        error = np.full(replicas, s)
        out[n] = Estimate(mean + s * rng.standard_normal(replicas), error)
    return out


def test_exact_recovery_order_1_and_2():
    widths = (4, 10, 25, 100, 1000)
    line = {n: Estimate(np.float64(1.5 - 3.0 / n), np.float64(1e-12)) for n in widths}
    fit = extrapolate(line)
    np.testing.assert_allclose(fit.coefficients, [1.5, -3.0], atol=1e-10)
    np.testing.assert_allclose(fit.infinite_width.value, 1.5, atol=1e-10)
    assert fit.dof == 3 and fit.chi2.shape == () and fit.chi2 < 1e-2  # rounding only
    assert fit.coefficients.shape == (2,) and fit.covariance.shape == (2, 2)
    np.testing.assert_allclose(fit.at(10).value, 1.5 - 0.3, atol=1e-10)
    np.testing.assert_allclose(fit.at(np.inf).value, 1.5, atol=1e-10)
    for est in (fit.infinite_width, fit.at(10)):
        assert isinstance(est.value, np.ndarray) and est.value.shape == ()
        assert isinstance(est.error, np.ndarray) and est.error.shape == ()

    c = np.array([[0.5, -1.0], [2.0, 0.0]])  # an array estimate, shape (2, 2)
    quad = {n: Estimate(c + 4.0 / n - 7.0 / n**2, np.full((2, 2), 1e-12)) for n in widths}
    fit = extrapolate(quad, order=2)
    assert fit.coefficients.shape == (3, 2, 2) and fit.covariance.shape == (3, 3, 2, 2)
    np.testing.assert_allclose(fit.coefficients[0], c, atol=1e-10)
    np.testing.assert_allclose(fit.coefficients[1], 4.0, atol=1e-10)
    np.testing.assert_allclose(fit.coefficients[2], -7.0, atol=1e-10)
    assert fit.p_value.shape == (2, 2)


def test_interpolating_fit_has_nan_p_value():
    fit = extrapolate({2: Estimate(1.0, 0.1), 4: Estimate(0.5, 0.1)})
    assert fit.dof == 0 and np.isnan(fit.p_value)
    np.testing.assert_allclose(fit.coefficients, [0.0, 2.0], atol=1e-12)
    # two points, unit weights in x = 1/N: Var(c0) = sum x^2 / det, det = n sum x^2 - (sum x)^2
    x = np.array([0.5, 0.25])
    var_c0 = 0.01 * (x**2).sum() / (2 * (x**2).sum() - x.sum() ** 2)
    np.testing.assert_allclose(fit.infinite_width.error, np.sqrt(var_c0), rtol=1e-12)


def test_at_propagates_the_covariance():
    fit = extrapolate(_synthetic((1.0, 2.0, 0.0), WIDTHS, [0.01] * 5, 3, seed=5))
    a = np.array([1.0, 1 / 20])
    for i in range(3):
        est = fit.at(20)
        cov = fit.covariance[..., i]
        assert est.value[i] == pytest.approx(a @ fit.coefficients[:, i])
        assert est.error[i] == pytest.approx(np.sqrt(a @ cov @ a))
    np.testing.assert_allclose(fit.at(np.inf).error, fit.infinite_width.error)


@pytest.mark.parametrize("order, c2", [(1, 0.0), (2, 30.0)])
def test_errors_are_calibrated(order, c2):
    """Over 4000 replicas of noisy data the pull (c0_hat - c0) / error is N(0, 1) and
    chi2 averages dof."""
    c = (0.7, -2.0, c2)
    sigma = [0.02, 0.015, 0.01, 0.012, 0.008]
    replicas = 4000
    fit = extrapolate(_synthetic(c, WIDTHS, sigma, replicas, seed=11), order=order)
    pull = fit.infinite_width.zscore(c[0])
    assert abs(pull.mean()) < 4 / np.sqrt(replicas)
    assert abs(pull.std() - 1) < 4 / np.sqrt(2 * replicas)
    # and the slope's pull, from the covariance
    slope_pull = (fit.coefficients[1] - c[1]) / np.sqrt(fit.covariance[1, 1])
    assert abs(slope_pull.mean()) < 4 / np.sqrt(replicas)
    assert abs(slope_pull.std() - 1) < 4 / np.sqrt(2 * replicas)
    dof = len(WIDTHS) - order - 1
    assert fit.dof == dof
    assert abs(fit.chi2.mean() - dof) < 4 * np.sqrt(2 * dof / replicas)
    # p-values of a correct model are uniform
    assert abs(fit.p_value.mean() - 0.5) < 4 * np.sqrt(1 / 12 / replicas)


def test_missing_term_gives_a_small_p_value():
    """Negative control: order=1 on data with a large 1/N**2 term."""
    data = _synthetic((0.7, -2.0, 200.0), WIDTHS, [0.01] * 5, 1, seed=3)
    fit = extrapolate(data, order=1)
    assert fit.p_value[0] < 1e-6
    assert abs(fit.infinite_width.zscore(0.7)[0]) > 4  # and c0 is biased
    good = extrapolate(data, order=2)
    assert good.p_value[0] > 1e-3
    assert abs(good.infinite_width.zscore(0.7)[0]) < 4


def test_deep_linear_kurtosis_extrapolates_to_gaussian():
    """Deep-linear Gaussian network: at layer 2 the same-neuron connected four-point over
    K^2 is exactly 6/n (kurtosis 3 (1 + 2/n)), so the fit gives c0 = 0 and c1 = 6."""
    X = np.ones((1, 4))
    estimates = {}
    for n in (8, 16, 32, 64):
        net = nf.Network((4, n, n), "linear", "gaussian", cw=1.0)
        ens = nf.sample(net, X, 20000, seed=100 + n)
        estimates[n] = ens.estimate(
            2, lambda m: m.same_connected[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2
        )
    fit = nf.extrapolate(estimates, order=1)
    assert isinstance(fit, nf.Extrapolation)
    assert abs(fit.infinite_width.zscore(0.0)) < 4
    assert abs((fit.coefficients[1] - 6.0) / np.sqrt(fit.covariance[1, 1])) < 4
    assert fit.infinite_width.error < 0.05  # meaningful: resolves c0 well below 6/8
    assert fit.p_value > 1e-4


GOOD = Estimate(np.zeros(3), np.ones(3))


@pytest.mark.parametrize(
    "estimates, order, error, match",
    [
        ({8: GOOD}, 1, ValueError, "at least 2 widths, got 1"),
        ({8: GOOD, 16: GOOD}, 2, ValueError, "at least 3 widths, got 2"),
        ({8: GOOD, 16: GOOD}, 3, ValueError, "order must be 1 or 2"),
        ({8: GOOD, 16: GOOD}, 0, ValueError, "order must be 1 or 2"),
        ({8: GOOD, 16: GOOD}, 1.0, TypeError, "order must be the integer"),
        ({8: GOOD, 16: GOOD}, True, TypeError, "order must be the integer"),
        (
            {8: GOOD, 16: Estimate(np.zeros(3), np.array([1.0, 0.0, 1.0]))},
            1,
            ValueError,
            r"N=16 has errors that are not finite and > 0",
        ),
        (
            {8: Estimate(np.zeros(3), np.full(3, np.nan), "too few"), 16: GOOD},
            1,
            ValueError,
            r"N=8 has errors that are not finite and > 0 \(too few\)",
        ),
        ({8: GOOD, 16: Estimate(np.zeros(3), -np.ones(3))}, 1, ValueError, "N=16 has errors"),
        ({8: GOOD, 16: Estimate(np.zeros(3), np.full(3, np.inf))}, 1, ValueError, "N=16"),
        (
            {8: GOOD, 16: Estimate(np.full(3, np.nan), np.ones(3))},
            1,
            ValueError,
            "N=16 has non-finite values",
        ),
        ({8: GOOD, 16: Estimate(np.zeros(2), np.ones(2))}, 1, ValueError, "equal shapes"),
        ({8: GOOD, 16: Estimate(np.zeros(3), np.ones(2))}, 1, ValueError, "error shape"),
        ({8: GOOD, 16: Estimate(np.zeros(3) + 1j, np.ones(3))}, 1, TypeError, "real values"),
        ({8: GOOD, 16: Estimate(np.zeros(3), np.ones(3) + 0j)}, 1, TypeError, "real errors"),
        ({8: GOOD, 0: GOOD}, 1, ValueError, "N must be > 0, got 0"),
        ({8: GOOD, -4: GOOD}, 1, ValueError, "N must be > 0, got -4"),
        ({8: GOOD, float("nan"): GOOD}, 1, ValueError, "N must be > 0"),
        ({8: GOOD, float("inf"): GOOD}, 1, ValueError, "N must be finite"),
        ({8: GOOD, "16": GOOD}, 1, TypeError, "N must be a positive number"),
        ({8: GOOD, 1j: GOOD}, 1, TypeError, "N must be a positive number"),
        ({8: GOOD, 2**53: GOOD, 2**53 + 1: GOOD}, 1, ValueError, "widths N must be distinct"),
        ({8: GOOD, 16: (0.0, 1.0)}, 1, TypeError, r"estimates\[16\] must be an Estimate"),
        ([GOOD, GOOD], 1, TypeError, "estimates must be a mapping"),
    ],
)
def test_bad_input(estimates, order, error, match):
    with pytest.raises(error, match=match):
        extrapolate(estimates, order=order)


def test_at_rejects_bad_widths():
    fit = extrapolate({8: GOOD, 16: GOOD})
    with pytest.raises(ValueError, match="N must be > 0"):
        fit.at(0)
    with pytest.raises(TypeError, match="N must be a positive number"):
        fit.at("8")
