"""Cos-net field kernels and estimators against the plain-NumPy reference (tests/reference.py):
parameters drawn from the counter-based streams, the field on many points, the per-network
statistics and every estimator with its jackknife error; reproducibility across batches,
threads and splits; stores, resume and shards; validation."""

import concurrent.futures as cf

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.cpu_field_engine import FieldCpuEngine
from nnft_fast.field_run import FieldRun
from tests import reference as ref

CONFIGS = {
    "d1_alpha0_gauss": dict(dim=1, width=9, mass=0.7, cutoff=6.0, alpha=0.0),
    "d1_alpha05_const": dict(dim=1, width=9, mass=1.1, cutoff=4.0, alpha=0.5, amplitude="constant"),
    "d2_alpha0": dict(dim=2, width=7, mass=1.0, cutoff=5.0, alpha=0.0, n_out=2),
    "d2_alpha_m1_const": dict(
        dim=2, width=7, mass=0.5, cutoff=3.0, alpha=-1.0, amplitude="constant"
    ),
    "d3_alpha0": dict(dim=3, width=11, mass=1.3, cutoff=8.0, alpha=0.0),
    "d3_alpha05": dict(dim=3, width=6, mass=0.8, cutoff=5.0, alpha=0.5, n_out=3),
    "d4_alpha03": dict(dim=4, width=5, mass=1.0, cutoff=3.0, alpha=0.3),
}


def _net(name):
    return nf.CosNet(**CONFIGS[name])


def _points(dim, count, seed=3):
    return np.random.default_rng(seed).uniform(-1.5, 1.5, size=(count, dim))


def _gaussian_net():
    return nf.CosNet.gaussian_kernel(2, 8, length=0.7, variance=1.5, n_out=2, amplitude="constant")


ALL_NETS = [pytest.param(_net, name, id=name) for name in CONFIGS] + [
    pytest.param(lambda _: _gaussian_net(), "gaussian_momenta", id="gaussian_momenta")
]


@pytest.mark.parametrize(("make", "name"), ALL_NETS)
def test_parameters_match_reference(make, name):
    """w, b, a of networks 0, 1, 5 and 2^40 + 3 equal the reference's to rounding (the
    radial inverse CDF included: bisection to the last bit there, closed forms or Newton
    here)."""
    net = make(name)
    run = FieldRun(net, _points(net.dim, 3), seed=2**33 + 7)
    engine = FieldCpuEngine(run.kernel_args)
    for e in (0, 1, 5, 2**40 + 3):
        omega, beta, amp = engine.features(e, 1)
        w, b, a = ref.cosnet_parameters(net, 2**33 + 7, e)
        np.testing.assert_allclose(2 * np.pi * omega[0].T, w, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(2 * np.pi * beta[0], b, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(amp[0], a, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("make", "name"), ALL_NETS)
def test_fields_match_reference(make, name):
    net = make(name)
    x = _points(net.dim, 5)
    phi = nf.preactivations(net, x, 4, seed=11, first_network=3)
    assert len(phi) == 1 and phi[0].shape == (4, net.n_out, 5)
    expected = ref.cosnet_fields(net, x, 11, range(3, 7))
    np.testing.assert_allclose(phi[0], expected, rtol=1e-11, atol=1e-12)


def test_far_points_keep_rounding_accuracy():
    """Angles of hundreds of turns: the turn reduction keeps the field at rounding level."""
    net = nf.CosNet(1, 16, 1.0, 30.0)
    x = np.array([[0.0], [50.0], [-123.25]])
    phi = nf.preactivations(net, x, 2, seed=1)[0]
    np.testing.assert_allclose(phi, ref.cosnet_fields(net, x, 1, range(2)), atol=1e-11)


QUADS = [(0, 1, 2, 3), (0, 0, 1, 1), (2, 2, 2, 2), (0, 1, 1, 3)]
SEXTS = [(0, 1, 2, 3, 0, 1), (0, 0, 0, 0, 1, 1), (1, 2, 3, 0, 2, 2)]


@pytest.mark.parametrize("name", ["d2_alpha0", "d3_alpha05", "d1_alpha05_const"])
def test_estimates_match_reference(name):
    """Every estimator, value and jackknife error, equals the reference computed from the
    reference's own fields of the same networks (first_network not a multiple of 64)."""
    net = _net(name)
    x = _points(net.dim, 4)
    n, first = 150, 70
    ens = nf.sample(net, x, n, seed=5, first_network=first, quadruples=QUADS, sextuples=SEXTS)
    phi = ref.cosnet_fields(net, x, 5, range(first, first + n))
    moments = ref.moment_estimates(phi, net.width, first=first)
    two = ens.two_point()
    np.testing.assert_allclose(two.value, moments["two_point"][0], rtol=1e-10)
    np.testing.assert_allclose(two.error, moments["two_point"][1], rtol=1e-8)
    same = ens.four_point()
    np.testing.assert_allclose(same.value, moments["same_connected"][0], rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(same.error, moments["same_connected"][1], rtol=1e-6, atol=1e-13)
    if net.n_out > 1:
        distinct = ens.four_point(neurons="distinct")
        np.testing.assert_allclose(
            distinct.value, moments["distinct_connected"][0], rtol=1e-8, atol=1e-13
        )
        np.testing.assert_allclose(ens.vertex().value, moments["vertex"][0], rtol=1e-8, atol=1e-12)
    four = ens.connected_four_point()
    v4, e4 = ref.tuple_estimates(phi, QUADS, ref.connected_four, first=first)
    np.testing.assert_allclose(four.value, v4, rtol=1e-8, atol=1e-13)
    np.testing.assert_allclose(four.error, e4, rtol=1e-6, atol=1e-13)
    # the tuple estimator and the full tensor are the same numbers
    np.testing.assert_allclose(four.value, [same.value[t] for t in QUADS], rtol=1e-9, atol=1e-14)
    six = ens.connected_six_point()
    v6, e6 = ref.tuple_estimates(phi, SEXTS, ref.connected_six, first=first)
    np.testing.assert_allclose(six.value, v6, rtol=1e-7, atol=1e-13)
    np.testing.assert_allclose(six.error, e6, rtol=1e-5, atol=1e-13)
    raw4 = ens.connected_four_point(connected=False)
    np.testing.assert_allclose(
        raw4.value, [np.prod(phi[:, :, list(t)], axis=2).mean() for t in QUADS], rtol=1e-10
    )


def test_many_points_two_point_and_separation_profile():
    """B = 300 points on a 1-d grid: the compact two-point estimate equals the reference,
    and G(r) is the average of G over the pairs at each separation."""
    net = nf.CosNet(1, 12, 1.0, 6.0)
    x = np.arange(300, dtype=float)[:, None] * 0.05
    ens = nf.sample(net, x, 40, seed=9)
    assert ens.accumulator.layout.four_point is False  # B > 16: two-point by default
    phi = ref.cosnet_fields(net, x, 9, range(40))
    k_ref, err_ref = ref.two_point_estimates(phi)
    two = ens.two_point()
    np.testing.assert_allclose(two.value, k_ref, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(two.error, err_ref, rtol=1e-8, atol=1e-14)
    r, g_r = ens.two_point_by_separation()
    np.testing.assert_allclose(r, 0.05 * np.arange(300), atol=1e-12)
    for lag in (0, 1, 17, 299):
        pairs = [two.value[a, a + lag] for a in range(300 - lag)]
        assert g_r.value[lag] == pytest.approx(np.mean(pairs), rel=1e-12)
    assert np.all(g_r.error > 0)


def test_block_sums_independent_of_batches_threads_and_splits():
    net = _net("d3_alpha0")
    x = _points(3, 5)
    kwargs = dict(quadruples=QUADS, sextuples=SEXTS)
    whole = nf.sample(net, x, 200, seed=4, **kwargs)
    batched = nf.sample(net, x, 200, seed=4, batch_size=7, threads=1, **kwargs)
    left = nf.sample(net, x, 83, seed=4, **kwargs)
    right = nf.sample(net, x, 117, seed=4, first_network=83, **kwargs)
    merged = left.merge(right)
    np.testing.assert_array_equal(batched.accumulator.block_sums, whole.accumulator.block_sums)
    # a merge adds each block's two partial sums: equal to rounding
    np.testing.assert_allclose(
        merged.accumulator.block_sums, whole.accumulator.block_sums, rtol=1e-13, atol=1e-15
    )
    assert isinstance(merged, nf.FieldEnsemble)
    with cf.ThreadPoolExecutor(2) as pool:  # shards of n_blocks networks: bit-identical
        sharded = nf.sample(net, x, 200, seed=4, executor=pool, shard_size=64, **kwargs)
    np.testing.assert_array_equal(sharded.accumulator.block_sums, whole.accumulator.block_sums)
    np.testing.assert_array_equal(
        sharded.connected_six_point().value, whole.connected_six_point().value
    )


def test_store_roundtrip_resume_and_shards(tmp_path):
    net = _net("d2_alpha0")
    x = _points(2, 6)
    kwargs = dict(quadruples=QUADS, sextuples=SEXTS)
    memory = nf.sample(net, x, 300, seed=8, **kwargs)
    path = tmp_path / "field.h5"
    stored = nf.sample(net, x, 300, seed=8, store=path, batch_size=50, **kwargs)
    opened = nf.open(path)
    for ens in (stored, opened):
        assert isinstance(ens, nf.FieldEnsemble)
        np.testing.assert_array_equal(ens.accumulator.block_sums, memory.accumulator.block_sums)
        np.testing.assert_array_equal(
            ens.connected_four_point().value, memory.connected_four_point().value
        )
    raw = nf.read_raw(path, 1)
    np.testing.assert_array_equal(raw, nf.preactivations(net, x, 300, seed=8)[0][:, :2])
    assert nf.store_info(path, verify_raw=True)["config"]["network"]["kind"] == "cosnet"

    def stop_after_two(done, total):
        if done >= 100:
            raise KeyboardInterrupt

    partial = tmp_path / "partial.h5"
    with pytest.raises(KeyboardInterrupt):
        nf.sample(
            net, x, 300, seed=8, store=partial, batch_size=50, progress=stop_after_two, **kwargs
        )
    assert nf.open(partial).n_networks == 100
    resumed = nf.resume(partial, batch_size=30)
    np.testing.assert_array_equal(resumed.accumulator.block_sums, memory.accumulator.block_sums)
    reanalyzed = nf.reanalyze(path)
    np.testing.assert_allclose(
        reanalyzed.two_point().value, memory.two_point().value, rtol=1e-12
    )  # both outputs saved ("default": min(4, n_out))
    with cf.ThreadPoolExecutor(2) as pool:
        sharded = nf.sample(
            net, x, 300, seed=8, executor=pool, shard_size=64, store=tmp_path / "s.h5", **kwargs
        )
    np.testing.assert_array_equal(sharded.accumulator.block_sums, memory.accumulator.block_sums)
    np.testing.assert_array_equal(
        nf.open(tmp_path / "s.h5").accumulator.block_sums, memory.accumulator.block_sums
    )


def test_nonfinite_points_and_other_bad_input():
    net = _net("d2_alpha0")
    x = _points(2, 4)
    cases = [
        (lambda: nf.CosNet(0, 4, 1.0, 1.0), ValueError, "dim"),
        (lambda: nf.CosNet(2, 0, 1.0, 1.0), ValueError, "width"),
        (lambda: nf.CosNet(2, 4.5, 1.0, 1.0), TypeError, "width"),
        (lambda: nf.CosNet(2, 4, 0.0, 1.0), ValueError, "mass"),
        (lambda: nf.CosNet(2, 4, 1.0, -1.0), ValueError, "cutoff"),
        (lambda: nf.CosNet(2, 4, 1.0, 1.0, alpha=float("nan")), ValueError, "alpha"),
        (lambda: nf.CosNet(2, 4, 1.0, 1.0, amplitude="cauchy"), ValueError, "amplitude"),
        (lambda: nf.CosNet(2, 4, 1.0, 1.0, n_out=0), ValueError, "n_out"),
        (lambda: nf.CosNet(2, 4), TypeError, "mass"),
        (lambda: nf.CosNet.gaussian_kernel(2, 4, length=-1.0), ValueError, "length"),
        (lambda: nf.sample(net, x[:, :1], 10), ValueError, "dimension"),
        (lambda: nf.sample(net, np.full((3, 2), np.inf), 10), ValueError, "non-finite"),
        (
            lambda: nf.sample(net, _points(2, 17), 10, observables=("two_point", "four_point")),
            ValueError,
            "quadruples",
        ),
        (lambda: nf.sample(net, x, 10, observables=("two_point", "ntk")), ValueError, "ntk"),
        (lambda: nf.sample(net, x, 10, dtype=np.float32), ValueError, "float64"),
        (lambda: nf.sample(net, x, 10, method="dense"), ValueError, "method"),
        (lambda: nf.sample(net, x, 10, quadruples=[(0, 1, 2, 4)]), ValueError, "outside"),
        (lambda: nf.sample(net, x, 10, quadruples=[(0, 1, 2)]), ValueError, "shape"),
        (lambda: nf.sample(net, x, 10, sextuples=[(0.5,) * 6]), TypeError, "integer"),
        (
            lambda: nf.sample(nf.Network((2, 4)), x, 10, quadruples=[(0, 1, 2, 3)]),
            ValueError,
            "cos-net",
        ),
        (lambda: nf.sample(net, x, 10).connected_four_point(), ValueError, "quadruples"),
        (lambda: nf.sample(net, x, 10).two_point(2), ValueError, "layer"),
    ]
    for call, error, match in cases:
        with pytest.raises(error, match=match):
            call()


def test_dask_shards_into_a_store(tmp_path):
    """A cos-net run sharded on a dask.distributed LocalCluster (worker processes rebuild
    the FieldRun from its stored description) equals the single-process run."""
    pytest.importorskip("dask.distributed")
    from nnft_fast import distributed as nd

    net = _net("d1_alpha05_const")
    x = _points(1, 5)
    kwargs = dict(quadruples=QUADS, sextuples=SEXTS)
    memory = nf.sample(net, x, 256, seed=12, **kwargs)  # also fills the kernel cache
    with nd.dask_executor(workers=1) as executor:
        sharded = nf.sample(
            net,
            x,
            256,
            seed=12,
            executor=executor,
            shard_size=64,
            store=tmp_path / "d.h5",
            **kwargs,
        )
    np.testing.assert_array_equal(sharded.accumulator.block_sums, memory.accumulator.block_sums)
    reopened = nf.open(tmp_path / "d.h5")
    assert isinstance(reopened, nf.FieldEnsemble)
    np.testing.assert_array_equal(
        reopened.connected_six_point().value, memory.connected_six_point().value
    )


def test_two_point_on_1024_points():
    """B = 1,024 points (a 32 x 32 grid): the compact two-point estimate with its errors
    equals the reference from the fields themselves, and G(r) has one value per distinct
    grid separation."""
    net = nf.CosNet(2, 6, 1.0, 4.0, alpha=-1.0)
    x = nf.grid_points((32, 32), spacing=0.3)
    ens = nf.sample(net, x, 12, seed=21)
    k_ref, err_ref = ref.two_point_estimates(ref.cosnet_fields(net, x, 21, range(12)))
    two = ens.two_point()
    assert two.value.shape == (1024, 1024)
    np.testing.assert_allclose(two.value, k_ref, rtol=1e-9, atol=1e-13)
    np.testing.assert_allclose(two.error, err_ref, rtol=1e-7, atol=1e-13)
    r, g_r = ens.two_point_by_separation()
    offsets = {(i * i + j * j) for i in range(32) for j in range(32)}
    assert r.size == len(offsets)
