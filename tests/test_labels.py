"""Labelled results (nnft_fast/labels.py, covariance.py): xarray datasets and pandas frames
that hold exactly the Estimates, attributes that rebuild the network, the jackknife
covariance against an independent NumPy computation from the block sums, uncertainties
and gvar numbers, netCDF dimension names of store files, and the ImportError of a missing
extra."""

import concurrent.futures as cf
import json
import sys
import warnings

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast import report

xr = pytest.importorskip("xarray")
pd = pytest.importorskip("pandas")
gvar = pytest.importorskip("gvar")
uncertainties = pytest.importorskip("uncertainties")
pytest.importorskip("h5netcdf")
from uncertainties import unumpy  # noqa: E402

NET = nf.Network((3, 8, 8, 8), "tanh", "gaussian", cw=1.5, cb=0.1)
X = np.array([[1.0, -0.5, 0.3], [0.2, 0.7, -1.1]])
N = 2000
OBSERVABLES = ("two_point", "four_point", "ntk")
TENSORS = ("two_point", "four_point", "four_point_same", "vertex", "ntk")


@pytest.fixture(scope="module")
def ens():
    return nf.sample(NET, X, N, seed=3, observables=OBSERVABLES, ntk_readouts=2)


def _estimate(ens, name, layer):
    """The Estimate the ensemble's own method gives for an exported variable."""
    if name.startswith("ntk_"):
        return getattr(ens.ntk_fluctuations(layer), name[-1])
    return {
        "two_point": ens.two_point,
        "four_point": ens.four_point,
        "four_point_same": lambda layer: ens.four_point(layer, neurons="same"),
        "vertex": ens.vertex,
        "ntk": ens.ntk,
    }[name](layer)


# ----------------------------------------------------------------------------- xarray


def test_to_xarray_holds_the_estimates_exactly(ens):
    ds = ens.to_xarray()
    names = list(TENSORS) + [f"ntk_{f}" for f in "ABDF"]
    assert set(ds.data_vars) == set(names) | {f"{n}_error" for n in names} | {"nonfinite"}
    assert ds["two_point"].dims == ("layer", "alpha", "beta")
    assert ds["vertex"].dims == ("layer", "alpha", "beta", "gamma", "delta")
    assert list(ds["layer"].values) == [1, 2, 3]
    assert list(ds["width"].values) == [8, 8, 8]
    np.testing.assert_array_equal(ds["inputs"].values, X)
    for name in names:
        for layer in (1, 2, 3):
            estimate = _estimate(ens, name, layer)
            np.testing.assert_array_equal(ds[name].sel(layer=layer).values, estimate.value)
            np.testing.assert_array_equal(
                ds[f"{name}_error"].sel(layer=layer).values, estimate.error
            )
    # a labelled selection is the entry of the tensor
    entry = ds["four_point"].sel(layer=2, alpha=0, beta=1, gamma=1, delta=0).item()
    assert entry == ens.four_point(2).value[0, 1, 1, 0]


def test_attrs_rebuild_the_network_and_survive_netcdf(ens, tmp_path):
    attrs = ens.to_xarray().attrs
    rebuilt = nf.Network(
        tuple(attrs["widths"]), attrs["activation"], attrs["init"], cw=attrs["cw"], cb=attrs["cb"]
    )
    assert rebuilt == ens.network
    config = json.loads(attrs["config"])
    assert attrs["config_source"] == "ensemble"
    assert nf.Network(**{**config["network"], "widths": tuple(config["network"]["widths"])}) == NET
    assert (config["seed"], config["method"], config["n_networks"]) == (3, ens.method, N)
    assert config["ntk"] == {"lambda_b": 1.0, "lambda_w": 1.0, "readouts": 2}
    assert (attrs["seed"], attrs["n_networks"], attrs["dtype"]) == (3, N, "float64")
    assert attrs["package_version"] == nf.__version__ and attrs["backend"] == "cpu"
    path = tmp_path / "labelled.nc"
    ens.to_xarray().to_netcdf(path, engine="h5netcdf")
    with xr.open_dataset(path, engine="h5netcdf") as back:
        np.testing.assert_array_equal(back["vertex"].values, ens.to_xarray()["vertex"].values)
        assert back.attrs["config"] == attrs["config"]
        assert list(back.attrs["cw"]) == attrs["cw"]


def test_two_point_only_ensemble_exports_what_it_has():
    two = nf.sample(NET, X, 300, seed=1, observables=("two_point",))
    ds = two.to_xarray()
    assert set(ds.data_vars) == {"two_point", "two_point_error", "nonfinite"}
    assert "gamma" not in ds.dims
    frame = two.to_dataframe()
    assert list(frame.columns) == ["width", "neurons", "K", "K_err", "nonfinite"]


def test_notes_go_into_attrs_and_warnings_reach_the_caller():
    tiny = nf.sample(NET, X, 2, seed=1)  # four-point errors need 3 networks
    with pytest.warns(nf.TooFewNetworksWarning) as record:
        ds = tiny.to_xarray()
    assert record[0].filename == __file__  # points at the caller, not at nnft_fast
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        note = tiny.vertex(2).note
    assert note and ds["vertex"].attrs["note_layer_2"] == note
    assert "note_layer_2" not in ds["two_point"].attrs  # two-point errors exist
    assert np.all(np.isnan(ds["vertex_error"].values))


# ----------------------------------------------------------------------------- pandas


def test_to_dataframe_rows_are_the_estimates(ens):
    for alpha in (0, 1):
        frame = ens.to_dataframe(alpha=alpha)
        assert frame.index.name == "layer" and list(frame.index) == [1, 2, 3]
        assert list(frame.columns) == [
            "width",
            "neurons",
            "K",
            "K_err",
            "V_over_K2",
            "V_over_K2_err",
            "Theta",
            "Theta_err",
            "nonfinite",
        ]
        for layer in (1, 2, 3):
            row = frame.loc[layer]
            k, theta = ens.two_point(layer), ens.ntk(layer)
            ratio = report.normalised_vertex(ens, layer, alpha)  # the report's definition
            assert row["K"] == k.value[alpha, alpha] and row["K_err"] == k.error[alpha, alpha]
            assert row["V_over_K2"] == ratio.value and row["V_over_K2_err"] == ratio.error
            assert row["Theta"] == theta.value[alpha, alpha]
            assert row["Theta_err"] == theta.error[alpha, alpha]
            assert row["width"] == 8 and row["nonfinite"] == 0
        assert frame.attrs["alpha"] == alpha
    with pytest.raises(ValueError, match="alpha"):
        ens.to_dataframe(alpha=2)


# ------------------------------------------------------------------------- covariance


def test_covariance_diagonal_is_the_squared_errors(ens):
    cov = ens.covariance(["two_point", "vertex", "ntk_A"], layers=[2, 3])
    estimates = [
        _estimate(ens, name, layer) for name in ("two_point", "vertex", "ntk_A") for layer in (2, 3)
    ]
    np.testing.assert_array_equal(cov.value, np.concatenate([e.value.ravel() for e in estimates]))
    np.testing.assert_array_equal(cov.error, np.concatenate([e.error.ravel() for e in estimates]))
    np.testing.assert_allclose(np.diag(cov.matrix), cov.error**2, rtol=1e-13, atol=0)
    assert cov.value.shape == (2 * (4 + 16 + 16),) and cov.matrix.shape == (72, 72)
    assert cov.labels[0] == ("two_point", 2, (0, 0)) and cov.labels[-1] == ("ntk_A", 3, (1,) * 4)
    assert cov.n_replicas == 64
    pieces = cov.unflatten(cov.value)
    np.testing.assert_array_equal(pieces[2], ens.vertex(2).value)


def test_covariance_is_symmetric_positive_semidefinite(ens):
    cov = ens.covariance([("two_point", 1), ("two_point", 3), ("four_point_same", 3), ("ntk", 3)])
    np.testing.assert_array_equal(cov.matrix, cov.matrix.T)
    eigenvalues = np.linalg.eigvalsh(cov.matrix)
    assert eigenvalues.min() >= -1e-12 * eigenvalues.max()
    # 64 replicas span at most 63 directions: the rank of a 4 + 4 + 16 + 4 matrix of
    # distinct statistics stays below that, so no degenerate direction is forced here
    assert np.linalg.matrix_rank(cov.matrix, tol=1e-10 * eigenvalues.max()) > 10
    np.testing.assert_allclose(np.abs(np.diag(cov.correlation)), 1.0, rtol=1e-12)


def test_identical_statistics_are_fully_correlated(ens):
    k01 = (3, lambda m: m.two_point[..., 0, 1])
    cov = ens.covariance([k01, k01, ("two_point", 3)])
    variance = cov.matrix[0, 0]
    assert cov.matrix[0, 1] == variance and cov.matrix[1, 1] == variance
    assert cov.matrix[0, 3] == variance  # entry (0, 1) of the named two_point, same replicas
    assert cov.labels[0] == ("statistic_0", 3, ())
    np.testing.assert_allclose(
        np.linalg.eigvalsh(cov.matrix[:2, :2]), [0, 2 * variance], atol=1e-20
    )


def _block_replicas(ens, layer, pair):
    """Delete-one-block replicas of K_pair at ``layer`` straight from the block sums."""
    acc = ens.accumulator
    used = acc.block_counts > 0
    column = acc.layout.pairs.index(pair)
    sums = acc.block_sums[used, layer - 1, column]
    counts = acc.block_counts[used]
    return (sums.sum() - sums) / (counts.sum() - counts)


def test_covariance_entry_against_numpy_from_the_block_sums(ens):
    x = _block_replicas(ens, 2, (0, 1))
    y = _block_replicas(ens, 3, (0, 0))
    g = x.size
    expected = (g - 1) / g * np.sum((x - x.mean()) * (y - y.mean()))
    cov = ens.covariance(
        [(2, lambda m: m.two_point[..., 0, 1]), (3, lambda m: m.two_point[..., 0, 0])]
    )
    np.testing.assert_allclose(cov.matrix[0, 1], expected, rtol=1e-10)
    np.testing.assert_allclose(
        cov.matrix[1, 1], (g - 1) / g * np.sum((y - y.mean()) ** 2), rtol=1e-10
    )
    # K_00 of consecutive layers: the deeper one is a function of the shallower
    layers = ens.covariance([(layer, lambda m: m.two_point[..., 0, 0]) for layer in (2, 3)])
    assert layers.correlation[0, 1] > 0.2  # 0.47 for these networks


def test_covariance_mixes_moment_and_ntk_statistics(ens):
    cov = ens.covariance(
        [(3, lambda m: m.two_point[..., 0, 0]), (3, lambda m: m.theta[..., 0, 0], "ntk")]
    )
    assert cov.error[1] == ens.ntk(3).error[0, 0]
    assert np.isfinite(cov.matrix[0, 1]) and cov.matrix[0, 1] != 0


def test_covariance_refuses_bad_requests(ens):
    with pytest.raises(ValueError, match="unknown statistic"):
        ens.covariance(["kurtosis"])
    with pytest.raises(TypeError, match="each statistic"):
        ens.covariance([3])
    with pytest.raises(ValueError, match="layer must be in"):
        ens.covariance([("two_point", 4)])
    with pytest.raises(ValueError, match="without 'ntk'"):
        nf.sample(NET, X, 50, seed=1).covariance(["ntk"])
    with pytest.raises(ValueError, match="four_point"):
        nf.sample(NET, X, 50, seed=1, observables=("two_point",)).covariance(["vertex"])


# ------------------------------------------------------------------ numbers with errors


def test_estimate_to_gvar_and_uncertainties(ens):
    est = ens.two_point(3)
    g = est.to_gvar()
    np.testing.assert_array_equal(gvar.mean(g), est.value)
    np.testing.assert_allclose(gvar.sdev(g), est.error, rtol=1e-14)
    u = est.to_uncertainties()
    assert u.shape == (2, 2)
    np.testing.assert_array_equal(unumpy.nominal_values(u), est.value)
    np.testing.assert_array_equal(unumpy.std_devs(u), est.error)
    scalar = ens.estimate(3, lambda m: m.two_point[..., 0, 0])
    assert isinstance(scalar.to_gvar(), gvar.GVar)
    assert scalar.to_uncertainties().n == scalar.value
    assert scalar.to_uncertainties().s == scalar.error


def test_covariance_to_correlated_numbers(ens):
    cov = ens.covariance(
        [(2, lambda m: m.two_point[..., 0, 0]), (3, lambda m: m.two_point[..., 0, 0])]
    )
    g = cov.to_gvar()
    np.testing.assert_array_equal(gvar.mean(g), cov.value)
    np.testing.assert_allclose(gvar.evalcov(g), cov.matrix, rtol=1e-12)
    u = cov.to_uncertainties()
    np.testing.assert_allclose(uncertainties.covariance_matrix(list(u)), cov.matrix, rtol=1e-9)
    # correlated: the difference of the layers is better known than independent errors say
    difference = g[1] - g[0]
    assert difference.sdev < np.hypot(*cov.error)


@pytest.mark.parametrize(
    ("module", "call"),
    [
        ("xarray", lambda ens: ens.to_xarray()),
        ("pandas", lambda ens: ens.to_dataframe()),
        ("gvar", lambda ens: ens.two_point(1).to_gvar()),
        ("uncertainties", lambda ens: ens.two_point(1).to_uncertainties()),
        ("gvar", lambda ens: ens.covariance([("two_point", 1)]).to_gvar()),
    ],
)
def test_missing_extra_says_how_to_install(ens, monkeypatch, module, call):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError, match=r"pip install 'nnft_fast\[labels\]'"):
        call(ens)


# ------------------------------------------------------------------------ HDF5 stores


def _check_store_labels(path, save, entry="input", neuron="neuron_{}"):
    # HDF5 refuses a second handle with other locking flags while xarray's is open
    with xr.open_dataset(path, engine="h5netcdf", group="raw") as raw:
        dims = {layer: raw[f"layer_{layer}"].dims for layer in save}
        values = {layer: raw[f"layer_{layer}"].values for layer in save}
    for layer in save:
        assert dims[layer] == ("network", neuron.format(layer), entry)
        np.testing.assert_array_equal(values[layer], nf.read_raw(path, layer))
    with xr.open_dataset(path, engine="h5netcdf", driver_kwds={"locking": False}) as root:
        assert root["inputs"].dims == (entry, f"{entry}_dim")
        np.testing.assert_array_equal(root["inputs"].values, nf.open(path).inputs)


def test_store_dimensions_are_named_for_xarray(tmp_path):
    p = tmp_path / "run.h5"
    save = {1: 3, 3: 4}
    nf.sample(NET, X, 300, seed=2, store=p, save=save, batch_size=70, observables=("two_point",))
    _check_store_labels(p, save)
    opened = nf.open(p)  # the readers still verify the file
    ds = opened.to_xarray()
    assert ds.attrs["config_source"] == "store" and ds.attrs["store_path"] == str(p)
    assert json.loads(ds.attrs["config"]) == nf.store_info(p)["config"]
    np.testing.assert_array_equal(nf.reanalyze(p).two_point(3).value.shape, (2, 2))


def test_merged_sharded_store_dimensions_are_named(tmp_path):
    p = tmp_path / "sharded.h5"
    with cf.ThreadPoolExecutor(1) as pool:
        nf.sample(NET, X, 240, seed=2, store=p, executor=pool, shard_size=100, save={2: 2})
    _check_store_labels(p, {2: 2})
    with xr.open_dataset(p, engine="h5netcdf", group="raw") as raw:
        assert raw.sizes["network"] == 240


# ----------------------------------------------------------------------------- fields


@pytest.fixture(scope="module")
def field():
    net = nf.CosNet(dim=1, width=9, mass=0.7, cutoff=6.0, n_out=2)
    points = np.array([[-0.6], [-0.2], [0.3], [0.7]])
    return nf.sample(
        net, points, 3000, seed=4, quadruples=[(0, 1, 2, 3)], sextuples=[(0, 0, 1, 1, 2, 3)]
    )


@pytest.mark.filterwarnings("ignore::nnft_fast.UnreliableErrorWarning")
def test_field_to_xarray(field):
    ds = field.to_xarray()
    assert ds["two_point"].dims == ("point_a", "point_b")
    assert ds["four_point"].dims == ("point_a", "point_b", "point_c", "point_d")
    np.testing.assert_array_equal(ds["two_point"].values, field.two_point().value)
    np.testing.assert_array_equal(ds["two_point_error"].values, field.two_point().error)
    np.testing.assert_array_equal(ds["four_point"].values, field.four_point().value)
    np.testing.assert_array_equal(
        ds["four_point_distinct"].values, field.four_point(neurons="distinct").value
    )
    np.testing.assert_array_equal(ds["vertex_error"].values, field.vertex().error)
    r, g_r = field.two_point_by_separation()
    np.testing.assert_array_equal(ds["r"].values, r)
    np.testing.assert_array_equal(ds["two_point_by_separation"].values, g_r.value)
    np.testing.assert_array_equal(
        ds["connected_four_point"].values, field.connected_four_point().value
    )
    np.testing.assert_array_equal(
        ds["connected_six_point_error"].values, field.connected_six_point().error
    )
    np.testing.assert_array_equal(ds["quadruple_points"].values, [[0, 1, 2, 3]])
    for corner in "abcd":
        np.testing.assert_array_equal(ds[f"position_{corner}"].values, field.points)
    assert ds["position_b"].dims == ("point_b", "space")
    config = json.loads(ds.attrs["config"])
    assert nf.CosNet.from_config(config["network"]) == field.network
    assert ds.attrs["kind"] == "cosnet" and config["quadruples"] == [[0, 1, 2, 3]]


def test_field_to_dataframe_is_g_of_r(field):
    frame = field.to_dataframe()
    r, g_r = field.two_point_by_separation()
    assert frame.index.name == "r" and list(frame.columns) == ["G", "G_err"]
    np.testing.assert_array_equal(frame.index.values, r)
    np.testing.assert_array_equal(frame["G"].values, g_r.value)
    np.testing.assert_array_equal(frame["G_err"].values, g_r.error)


def test_field_store_dimensions(tmp_path):
    net = nf.CosNet(dim=2, width=5, mass=1.0, cutoff=3.0, n_out=2)
    points = nf.grid_points((2, 2), spacing=0.5)
    p = tmp_path / "field.h5"
    nf.sample(net, points, 200, seed=1, store=p, save={1: 2}, observables=("two_point",))
    _check_store_labels(p, {1: 2}, entry="point", neuron="output")
