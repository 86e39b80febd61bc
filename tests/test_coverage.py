"""Coverage of the jackknife error bars over many seeds, against exact answers.

E[z^4]/E[z^2]^2 at the last layer of a deep Gaussian network without biases on one input
is exactly 3 prod_{l'<l} (1 + 5/n_l') for ReLU and 3 prod (1 + 2/n_l') for linear
activations (docs/exact-results.md). Over ``SEEDS`` ensembles of 3,000 tiny networks each,
value +- error must cover it in 68.3% of the seeds and value +- 2 error in 95.4%, within
4 binomial standard deviations, with a mean z-score within 4 standard errors of 0.

Where the per-network statistics are too heavy-tailed for that (deep narrow ReLU: depth /
width 1/4, measured 1-sigma coverage 58%), the estimates must say so instead: an
``UnreliableErrorWarning`` (and the Estimate's note) in most seeds, while the easy case
rarely warns (docs/estimators.md#coverage). Fixed seeds: the test is deterministic.
"""

import math
import warnings

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.accumulators import SKEWNESS_LIMIT, jackknife_error, jackknife_error_and_skewness
from nnft_fast.ensemble import UnreliableErrorWarning

SEEDS = range(200)
N_NETWORKS = 3000
X = np.ones((1, 1))


def kurtosis_ratio(m):
    return m.same_raw[..., 0, 0, 0, 0] / m.two_point[..., 0, 0] ** 2


def exact_ratio(widths, activation):
    c = 5.0 if activation == "relu" else 2.0
    return 3.0 * math.prod(1.0 + c / n for n in widths[1:-1])


def survey(widths, activation):
    """(z-scores, whether each seed's estimate warned, its notes) of the kurtosis ratio at
    the last layer over SEEDS."""
    net = nf.Network(widths, activation, "gaussian", cw=2.0 if activation == "relu" else 1.0)
    exact = exact_ratio(widths, activation)
    z, warned, notes = [], [], []
    for seed in SEEDS:
        ens = nf.sample(net, X, N_NETWORKS, seed=seed)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = ens.estimate(len(widths) - 1, kurtosis_ratio)
        z.append(float(est.zscore(exact)))
        warned.append(any(issubclass(w.category, UnreliableErrorWarning) for w in caught))
        notes.append(est.note)
    return np.array(z), np.array(warned), notes


def calibration(z):
    """(whether the 1- and 2-sigma coverage and the mean z are right within 4 sigma,
    a description)."""
    s = len(z)
    cov1, cov2, mean = np.mean(np.abs(z) < 1), np.mean(np.abs(z) < 2), float(np.mean(z))
    p1, p2 = math.erf(1 / math.sqrt(2)), math.erf(2 / math.sqrt(2))
    ok = (
        abs(cov1 - p1) < 4 * math.sqrt(p1 * (1 - p1) / s)
        and abs(cov2 - p2) < 4 * math.sqrt(p2 * (1 - p2) / s)
        and abs(mean) < 4 * float(np.std(z)) / math.sqrt(s)
    )
    return ok, f"coverage 1 sigma {cov1:.3f}, 2 sigma {cov2:.3f}, mean z {mean:+.2f} ({s} seeds)"


def test_easy_case_is_calibrated_and_quiet():
    """ReLU, two hidden layers of width 64 (kurtosis 3.49): right coverage, rare warnings."""
    z, warned, _ = survey((1, 64, 64, 64), "relu")
    ok, text = calibration(z)
    assert ok, f"jackknife errors miscalibrated: {text}"
    assert np.mean(warned) <= 0.1, f"{np.mean(warned):.0%} of the seeds warned; {text}"


def test_heavy_tails_are_calibrated_or_warn():
    """ReLU, depth/width 1/4 (four hidden layers of width 16, kurtosis 8.90): the errors
    must either cover right or warn in most seeds (with the reason in the note)."""
    z, warned, notes = survey((1, 16, 16, 16, 16, 16), "relu")
    ok, text = calibration(z)
    assert ok or np.mean(warned) >= 0.7, (
        f"miscalibrated ({text}) and only {np.mean(warned):.0%} of the seeds warned"
    )
    for w, note in zip(warned, notes):
        assert w == (note is not None and "skewed" in note)


def test_skewness_of_replicas():
    """The error is jackknife_error's bit for bit; the skewness is the sample skewness
    (NaN below 3 replicas or without spread), scale-free over 600 decades."""
    rng = np.random.default_rng(1)
    reps = rng.lognormal(size=(64, 3, 2))
    error, skew = jackknife_error_and_skewness(reps)
    assert np.array_equal(error, jackknife_error(reps))
    d = reps - reps.mean(axis=0)
    expected = np.mean(d**3, axis=0) / np.mean(d**2, axis=0) ** 1.5
    np.testing.assert_allclose(skew, expected, rtol=1e-12)
    for scale in (1e-300, 1e300):
        np.testing.assert_allclose(jackknife_error_and_skewness(reps * scale)[1], skew, 1e-12)
    assert np.all(np.isnan(jackknife_error_and_skewness(reps[:2])[1]))
    assert np.isnan(jackknife_error_and_skewness(np.ones(5))[1])
    assert np.all(np.abs(jackknife_error_and_skewness(rng.normal(size=(64, 100)))[1]) < 1.5)
    assert SKEWNESS_LIMIT == 2.0


def test_skewed_replicas_warn_with_a_note():
    """One network far out in the tail: its block dominates the replicas, so the estimate
    warns (pointing at the caller) and says why; the two-point function of the same
    light-tailed layer does not."""
    ens = nf.sample(nf.Network((1, 4, 4, 4, 4, 1), "relu", "gaussian", cw=2.0), X, 3000, seed=1)
    with pytest.warns(UnreliableErrorWarning, match="skewed") as record:
        est = ens.estimate(5, kurtosis_ratio)
    assert record[0].filename == __file__
    assert "sample more networks" in est.note and "docs/estimators.md#coverage" in est.note
    light = nf.sample(nf.Network((1, 64, 64), "linear", "gaussian"), X, 3000, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert light.two_point(2).note is None
