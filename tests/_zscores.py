"""z-scores of estimates against exact values or against each other, with the pass and
negative-control thresholds shared by the statistical tests."""

import numpy as np

Z_PASS = 4.5  # |z| below this for the right answer (max over entries)
Z_REJECT = 8.0  # |z| above this for the wrong answers (negative controls)


def zscores(value, error, exact, extra_error=0.0, rtol=1e-10):
    """(value - exact) / sqrt(error^2 + extra^2 + (rtol * max|exact|)^2): the rounding
    floor lets deterministic entries (error 0) compare exactly."""
    exact = np.asarray(exact, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    floor = rtol * max(float(np.max(np.abs(exact))), float(np.max(np.abs(value))), 1e-150)
    err2 = np.asarray(error, dtype=np.float64) ** 2 + np.asarray(extra_error) ** 2 + floor**2
    return (value - exact) / np.sqrt(err2)


def max_z(est, exact, extra_error=0.0):
    """max |z| of an Estimate against ``exact``."""
    return float(np.max(np.abs(zscores(est.value, est.error, exact, extra_error))))


def assert_agrees(est, exact, what, extra_error=0.0, tol=Z_PASS):
    z = zscores(est.value, est.error, exact, extra_error)
    assert np.all(np.isfinite(z)), f"{what}: non-finite z-scores {z}"
    zmax = float(np.max(np.abs(z)))
    assert zmax < tol, (
        f"{what}: max |z| = {zmax:.2f} >= {tol}\n value={est.value}\n "
        f"exact={np.asarray(exact)}\n error={est.error}"
    )


def assert_rejects(est, wrong, what, extra_error=0.0, tol=Z_REJECT):
    zmax = max_z(est, wrong, extra_error)
    assert zmax > tol, (
        f"negative control '{what}' not rejected: max |z| = {zmax:.2f} "
        f"<= {tol}; the test has no power against this error"
    )


def comparison_z(ens_a, ens_b, observables):
    """{(layer, label): max |z|} between two ensembles, z = (a - b) / sqrt(ea^2 + eb^2),
    over the (label, Estimate) pairs of ``observables(ens, layer)``."""
    out = {}
    for layer in range(1, ens_a.n_layers + 1):
        for (label, a), (_, b) in zip(observables(ens_a, layer), observables(ens_b, layer)):
            z = zscores(a.value, np.hypot(a.error, b.error), b.value)
            out[(layer, label)] = float(np.max(np.abs(z)))
    return out


def assert_methods_agree(ens_a, ens_b, observables, what):
    """Every compared entry within Z_PASS, and all estimates and errors finite."""
    zs = comparison_z(ens_a, ens_b, observables)
    worst = max(zs, key=zs.get)
    assert zs[worst] < Z_PASS, f"{what}: worst {worst} |z| = {zs[worst]:.2f}; {zs}"
    for ens in (ens_a, ens_b):
        for layer in range(1, ens.n_layers + 1):
            for _, est in observables(ens, layer):
                assert np.all(np.isfinite(est.value)) and np.all(np.isfinite(est.error))
