"""Deformed cos-net ensembles (nnft_fast.deformations): the interaction of every network,
the streaming first-order and reweighted accumulators and their estimators, against the
plain-NumPy reference (tests/reference.py); merging, stores and validation."""

import concurrent.futures as cf

import numba
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.cpu_field_engine import FieldCpuEngine
from nnft_fast.field_run import FieldRun
from tests import reference as ref

NET = nf.CosNet(1, 6, 1.0, 3.0, alpha=0.0)
X = np.array([[-0.5], [0.0], [0.4], [1.0]])
BOX = (-1.0, 1.0)
QUADS = [(0, 1, 2, 3), (0, 0, 1, 1)]
SEXTS = [(0, 1, 2, 3, 0, 1)]


def _reference_run(net, x, deformation, n, seed, first=0):
    """(phi on the points (M, B), s per network (M,)) from the reference's own fields."""
    rule = deformation.rule(net)
    phi = ref.cosnet_fields(net, x, seed, range(first, first + n))[:, 0, :]
    nodes = ref.cosnet_fields(net, rule.points, seed, range(first, first + n))[:, 0, :]
    return phi, ref.phi4_interaction(nodes, rule.weights)


def test_interaction_of_every_network_matches_reference():
    deformation = nf.Phi4(0.5, BOX)
    run = FieldRun(NET, X, 7, deformation=deformation)
    stats, _, _ = FieldCpuEngine(run.kernel_args).compute(3, 5)
    _, s = _reference_run(NET, X, deformation, 5, 7, first=3)
    np.testing.assert_allclose(stats[:, 0, -1], s, rtol=1e-11)


def test_every_output_is_deformed():
    """n_out = 2: s = sum_i sum_q W_q phi_i(y_q)^4 / 4!, both outputs' fields."""
    net = nf.CosNet(1, 6, 1.0, 3.0, alpha=0.0, n_out=2)
    deformation = nf.Phi4(0.5, BOX)
    run = FieldRun(net, X, 7, deformation=deformation)
    stats, _, _ = FieldCpuEngine(run.kernel_args).compute(3, 5)
    rule = deformation.rule(net)
    nodes = ref.cosnet_fields(net, rule.points, 7, range(3, 8))  # (M, n_out, Q)
    s = sum(ref.phi4_interaction(nodes[:, i, :], rule.weights) for i in range(2))
    np.testing.assert_allclose(stats[:, 0, -1], s, rtol=1e-11)
    one = ref.phi4_interaction(nodes[:, 0, :], rule.weights)
    assert np.all(np.abs(stats[:, 0, -1] - one) > 1e-6 * np.abs(s))  # not the first alone


def test_free_part_is_the_undeformed_run():
    free = nf.sample(NET, X, 300, seed=2, quadruples=QUADS)
    deformed = nf.sample(NET, X, 300, seed=2, quadruples=QUADS, deformation=nf.Phi4(0.2, BOX))
    np.testing.assert_array_equal(deformed.two_point().value, free.two_point().value)
    np.testing.assert_array_equal(
        deformed.connected_four_point().value, free.connected_four_point().value
    )
    with pytest.raises(ValueError, match="deformation"):
        free.first_order  # noqa: B018


def test_first_order_and_reweighted_estimators_match_reference():
    n, first, coupling = 400, 37, 0.8
    deformation = nf.Phi4(coupling, BOX)
    ens = nf.sample(
        NET,
        X,
        n,
        seed=5,
        first_network=first,
        quadruples=QUADS,
        sextuples=SEXTS,
        deformation=deformation,
    )
    phi, s = _reference_run(NET, X, deformation, n, 5, first)
    # first order
    value, error = ref.block_jackknife(
        lambda keep: ref.first_order_mean(np.einsum("ea,eb->eab", phi[keep], phi[keep]), s[keep]),
        n,
        first=first,
    )
    got = ens.first_order.two_point()
    np.testing.assert_allclose(got.value, value, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(got.error, error, rtol=1e-7, atol=1e-13)
    value, error = ref.block_jackknife(
        lambda keep: [ref.first_order_connected_four(phi[keep], s[keep], t) for t in QUADS],
        n,
        first=first,
    )
    got = ens.first_order.connected_four_point()
    np.testing.assert_allclose(got.value, value, rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(got.error, error, rtol=1e-6, atol=1e-13)
    full = ens.first_order.four_point()
    np.testing.assert_allclose([full.value[t] for t in QUADS], value, rtol=1e-8, atol=1e-13)
    # reweighted
    value, error = ref.block_jackknife(
        lambda keep: ref.reweighted_mean(
            np.einsum("ea,eb->eab", phi[keep], phi[keep]), s[keep], coupling
        ),
        n,
        first=first,
    )
    got = ens.reweighted.two_point()
    np.testing.assert_allclose(got.value, value, rtol=1e-10)
    np.testing.assert_allclose(got.error, error, rtol=1e-7, atol=1e-14)
    value, error = ref.block_jackknife(
        lambda keep: [
            ref.reweighted_connected_four(phi[keep], s[keep], coupling, t) for t in QUADS
        ],
        n,
        first=first,
    )
    got = ens.reweighted.connected_four_point()
    np.testing.assert_allclose(got.value, value, rtol=1e-8, atol=1e-14)
    np.testing.assert_allclose(got.error, error, rtol=1e-6, atol=1e-14)
    full = ens.reweighted.four_point()
    np.testing.assert_allclose([full.value[t] for t in QUADS], value, rtol=1e-8, atol=1e-14)
    w = np.exp(-coupling * s)
    assert ens.reweighted.effective_sample_size() == pytest.approx(w.sum() ** 2 / (w * w).sum())


def test_first_order_is_the_small_coupling_slope_of_reweighting():
    """On the same networks, (<G>_lambda - <G>_0) / lambda -> d<G>/dlambda as lambda -> 0:
    the difference of the two is O(lambda)."""
    ens = nf.sample(NET, X, 5000, seed=9, deformation=nf.Phi4(1e-4, BOX))
    slope = (ens.reweighted.two_point().value - ens.two_point().value) / 1e-4
    first = ens.first_order.two_point()
    np.testing.assert_allclose(slope, first.value, rtol=2e-3, atol=1e-3 * np.abs(first.value).max())


def test_log_sum_exp_weights_and_low_effective_sample_warning():
    """A coupling so large that exp(-S_int) underflows for every network: the shifted
    weights keep the estimates finite, the ESS is tiny and a warning says so."""
    ens = nf.sample(NET, X, 500, seed=4, deformation=nf.Phi4(1e11, BOX))
    assert ens.accumulator.block_shift.max() < -746  # every unshifted exp(-S_int) is 0.0
    with pytest.warns(nf.LowEffectiveSampleWarning, match="effective sample size"):
        g = ens.reweighted.two_point()
    assert np.all(np.isfinite(g.value))
    assert ens.reweighted.effective_sample_size() < 5


def test_merge_shards_store_and_resume(tmp_path):
    deformation = nf.Phi4(2.0, BOX)
    kwargs = dict(quadruples=QUADS, deformation=deformation)
    whole = nf.sample(NET, X, 300, seed=6, **kwargs)
    left = nf.sample(NET, X, 130, seed=6, **kwargs)
    right = nf.sample(NET, X, 170, seed=6, first_network=130, **kwargs)
    merged = left.merge(right)
    for name in ("two_point", "connected_four_point"):
        for view in ("reweighted", "first_order"):
            a = getattr(getattr(merged, view), name)()
            b = getattr(getattr(whole, view), name)()
            np.testing.assert_allclose(a.value, b.value, rtol=1e-11, atol=1e-15)
            np.testing.assert_allclose(a.error, b.error, rtol=1e-9, atol=1e-15)
    batched = nf.sample(NET, X, 300, seed=6, batch_size=7, **kwargs)
    np.testing.assert_array_equal(batched.accumulator.block_sums, whole.accumulator.block_sums)
    np.testing.assert_array_equal(batched.accumulator.block_shift, whole.accumulator.block_shift)
    path = tmp_path / "phi4.h5"

    def stop(done, total):
        if done >= 100:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nf.sample(NET, X, 300, seed=6, store=path, batch_size=50, progress=stop, **kwargs)
    resumed = nf.resume(path, batch_size=64)
    np.testing.assert_array_equal(resumed.accumulator.block_sums, whole.accumulator.block_sums)
    assert nf.store_info(path)["config"]["deformation"]["kind"] == "phi4"
    assert nf.open(path).reweighted.two_point().value == pytest.approx(
        whole.reweighted.two_point().value
    )
    with cf.ThreadPoolExecutor(2) as pool:
        sharded = nf.sample(NET, X, 300, seed=6, executor=pool, shard_size=64, **kwargs)
    np.testing.assert_allclose(
        sharded.reweighted.two_point().value, whole.reweighted.two_point().value, rtol=1e-12
    )


@numba.njit
def _half_square(phi):
    return 0.5 * phi * phi


@numba.njit
def _amplitude_norm(omega, beta, amp):
    return np.sum(amp * amp)


def test_user_potential_and_parameter_action():
    rule = nf.Phi4(1.0, BOX).rule(NET)
    local = nf.LocalInteraction(0.3, _half_square, BOX)
    run = FieldRun(NET, X, 1, deformation=local)
    stats, _, _ = FieldCpuEngine(run.kernel_args).compute(0, 4)
    nodes = ref.cosnet_fields(NET, rule.points, 1, range(4))[:, 0, :]
    np.testing.assert_allclose(stats[:, 0, -1], (0.5 * nodes**2) @ rule.weights, rtol=1e-11)
    action = nf.ParameterInteraction(0.3, _amplitude_norm)
    run = FieldRun(NET, X, 1, deformation=action)
    stats, _, _ = FieldCpuEngine(run.kernel_args).compute(0, 4)
    expected = [np.sum(ref.cosnet_parameters(NET, 1, e)[2] ** 2) for e in range(4)]
    np.testing.assert_allclose(stats[:, 0, -1], expected, rtol=1e-12)
    ens = nf.sample(NET, X, 50, seed=1, deformation=action)
    assert np.all(np.isfinite(ens.first_order.two_point().value))
    with pytest.raises(ValueError, match="cannot be stored"):
        nf.sample(NET, X, 50, seed=1, deformation=local, store="never.h5")


def test_bad_deformations():
    cases = [
        (lambda: nf.Phi4(float("nan"), BOX), ValueError, "coupling"),
        (lambda: nf.Phi4("1", BOX), TypeError, "coupling"),
        (lambda: nf.LocalInteraction(1.0, lambda p: p, BOX), TypeError, "njit"),
        (lambda: nf.ParameterInteraction(1.0, None), TypeError, "njit"),
        (
            lambda: nf.sample(NET, X, 10, deformation=nf.Phi4(1.0, [(0, 1), (0, 1)])),
            ValueError,
            "box",
        ),
        (lambda: nf.sample(NET, X, 10, deformation=nf.Phi4(1.0, (1.0, -1.0))), ValueError, "box"),
        (lambda: nf.sample(NET, X, 10, deformation="phi4"), TypeError, "deformation"),
        (  # a user potential runs on the CPU only (without a GPU: no CUDA backend at all)
            lambda: nf.sample(
                NET,
                X,
                10,
                deformation=nf.LocalInteraction(1.0, _half_square, BOX),
                backend="cuda",
            ),
            ValueError,
            "cuda",
        ),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_the_result_states_its_quadrature():
    ens = nf.sample(NET, X, 20, seed=1, deformation=nf.Phi4(1.0, BOX))
    rule = ens.quadrature
    assert rule.error_bound < 1e-10 and rule.nodes[0] >= 4
    assert rule.points.shape == (rule.nodes[0], 1) and rule.weights.sum() == pytest.approx(2.0)
    assert nf.sample(NET, X, 20, seed=1).quadrature is None
    left = nf.sample(NET, X, 10, seed=1, deformation=nf.Phi4(1.0, BOX))
    right = nf.sample(NET, X, 10, seed=1, first_network=10, deformation=nf.Phi4(1.0, BOX))
    assert left.merge(right).quadrature is not None
