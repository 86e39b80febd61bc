"""Parameter sweeps: [sweep] expansion and its errors, run_sweep into one directory
(stores equal to nf.sample of each point, manifest, resume point by point, refusal of
another sweep's directory, an executor), and the combined report."""

import csv
import json
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import nnft_fast as nf
import nnft_fast.sampling
import nnft_fast.sweep as sweep_module
from nnft_fast.config import ConfigError, decode_config, parse_config
from nnft_fast.report import normalised_vertex
from nnft_fast.susceptibility import measured_susceptibilities, predicted_susceptibilities
from nnft_fast.sweep import (
    MANIFEST,
    SweepError,
    expand_sweep,
    is_sweep_directory,
    load_sweep,
    read_manifest,
    run_sweep,
)
from nnft_fast.sweep_report import CSV_NAME, write_sweep_report

BASE = """
[network]
widths = [3, 6, 6]
activation = "tanh"
init = "gaussian"
cb = 0.0

[inputs]
values = [[1.0, 1.0, 1.0], [1.01, 1.01, 1.01], [0.9798013399732447, 1.019798673359911, 1.0]]

[run]
n_networks = 300
seed = 5
batch_size = 64
"""
SWEEP = (
    BASE
    + """
[sweep]
"network.cw" = [0.8, 1.2]
"network.init" = ["gaussian", "orthogonal"]
"""
)


def write(tmp_path, text, name="sweep.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def expand(text):
    return expand_sweep(decode_config(text))


def stored(directory, name):
    return nf.open(os.path.join(directory, name))


def direct(point):
    cfg = point.config
    return nf.sample(cfg.network, cfg.inputs, cfg.n_networks, cfg.seed, batch_size=cfg.batch_size)


def assert_same_statistics(a, b):
    assert a.n_networks == b.n_networks
    assert np.array_equal(a.accumulator.block_sums, b.accumulator.block_sums)
    assert np.array_equal(a.accumulator.block_counts, b.accumulator.block_counts)


def assert_same_points(directory, reference):
    """The four point stores of ``directory`` hold the statistics of ``reference``'s."""
    for i in range(4):
        name = f"point_00{i}.h5"
        assert_same_statistics(stored(directory, name), stored(reference, name))


# --------------------------------------------------------------------------- expansion


def test_grid_is_the_outer_product_last_key_fastest():
    mode, keys, points = expand(
        BASE + '[sweep]\n"network.cw" = [0.5, 1.0, 1.5]\n"network.activation" = ["tanh", "relu"]\n'
    )
    assert mode == "grid" and keys == ("network.cw", "network.activation")
    assert points == [
        {"network.cw": cw, "network.activation": act}
        for cw in (0.5, 1.0, 1.5)
        for act in ("tanh", "relu")
    ]


def test_zip_pairs_the_lists_and_the_nested_form_is_the_same():
    quoted = expand(
        BASE + '[sweep]\nmode = "zip"\n"network.cw" = [1.0, 2.0]\n"run.seed" = [3, 4]\n'
    )
    nested = expand(BASE + '[sweep]\nmode = "zip"\nnetwork.cw = [1.0, 2.0]\nrun.seed = [3, 4]\n')
    assert quoted == nested
    assert quoted[2] == [{"network.cw": 1.0, "run.seed": 3}, {"network.cw": 2.0, "run.seed": 4}]


def test_points_substitute_the_values_into_the_base_config(tmp_path):
    sweep = load_sweep(write(tmp_path, SWEEP))
    assert [p.index for p in sweep.points] == [0, 1, 2, 3]
    assert [(p.config.network.cw, p.config.network.init) for p in sweep.points] == [
        (0.8, "gaussian"),
        (0.8, "orthogonal"),
        (1.2, "gaussian"),
        (1.2, "orthogonal"),
    ]
    assert all(p.config.n_networks == 300 and p.config.seed == 5 for p in sweep.points)
    assert len({p.checksum for p in sweep.points}) == 4
    assert sweep.points[3].label == "network.cw=1.2 network.init=orthogonal"


@pytest.mark.parametrize(
    "table,needle",
    [
        ('"network.cww" = [1.0]', "unknown key 'network.cww'"),
        ('"netwrk.cw" = [1.0]', "unknown key 'netwrk.cw'"),
        ('"points.values" = [[[0.0]]]', "unknown key 'points.values'"),  # a cos-net key
        ('"network.cw" = ["big"]', "'network.cw' must be"),
        ('"run.n_networks" = [10, 2.5]', "'run.n_networks' must be"),
        ('"network.cw" = 1.0', "'network.cw' must be a non-empty array"),
        ('"network.cw" = []', "'network.cw' must be a non-empty array"),
        ('"store.out" = ["a.h5"]', "'store.out' cannot be swept"),
        ('"network.kind" = ["cosnet"]', "'network.kind' cannot be swept"),
        ('"network.cw" = [1.0]\nnetwork.cw = [2.0]', "'network.cw' is swept twice"),
        ('mode = "star"\n"network.cw" = [1.0]', "'sweep.mode' must be one of grid, zip"),
        ('mode = "zip"', "sweeps no key"),
        (
            'mode = "zip"\n"network.cw" = [1.0, 2.0]\n"run.seed" = [1, 2, 3]',
            "'network.cw' 2, 'run.seed' 3",
        ),
    ],
)
def test_sweep_errors_name_the_key(table, needle):
    with pytest.raises(ConfigError) as info:
        expand(BASE + "[sweep]\n" + table + "\n")
    assert needle in str(info.value)


def test_a_point_the_parser_refuses_is_named_before_anything_runs(tmp_path):
    path = write(tmp_path, BASE + '[sweep]\n"network.activation" = ["tanh", "nope"]\n')
    with pytest.raises(ConfigError, match=r"sweep point 1 \(network.activation=nope\)"):
        run_sweep(path, tmp_path / "out")
    assert not os.path.exists(tmp_path / "out" / "point_000.h5")


def test_parse_config_refuses_a_sweep():
    with pytest.raises(ConfigError, match="nnft sweep"):
        parse_config(SWEEP)


# --------------------------------------------------------------------------- running


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A complete 2x2 sweep: (config path, directory, manifest, log lines)."""
    root = tmp_path_factory.mktemp("sweep")
    config = write(root, SWEEP)
    lines = []
    manifest = run_sweep(config, root / "out", log=lines.append)
    return config, str(root / "out"), manifest, lines


def test_every_point_equals_nf_sample_of_its_config(finished):
    config, out, manifest, lines = finished
    points = load_sweep(config).points
    assert sorted(f for f in os.listdir(out) if f.endswith(".h5")) == [p.store for p in points]
    for point in points:
        assert_same_statistics(stored(out, point.store), direct(point))
    assert lines[2] == "point 3/4 (point_002.h5): network.cw=1.2 network.init=gaussian"


def test_manifest_lists_every_point(finished):
    config, out, manifest, _ = finished
    with open(os.path.join(out, MANIFEST)) as fh:
        on_disk = json.load(fh)
    assert on_disk == manifest == read_manifest(out)
    assert is_sweep_directory(out) and not is_sweep_directory(os.path.join(out, "point_000.h5"))
    assert on_disk["keys"] == ["network.cw", "network.init"] and on_disk["mode"] == "grid"
    sweep = load_sweep(config)
    assert on_disk["checksum"] == sweep.checksum
    for entry, point in zip(on_disk["points"], sweep.points):
        assert entry["index"] == point.index and entry["values"] == point.values
        assert entry["store"] == point.store and entry["checksum"] == point.checksum
        assert entry["status"] == "complete" and entry["committed"] == entry["n_networks"] == 300
    assert not [f for f in os.listdir(out) if ".tmp" in f]


def test_a_second_run_skips_complete_points(finished, monkeypatch):
    config, out, _, _ = finished
    mtimes = {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in os.listdir(out)}
    monkeypatch.setattr(nnft_fast.sampling, "sample", None)  # calling it would fail
    monkeypatch.setattr(sweep_module, "resume", None)
    lines = []
    run_sweep(config, out, log=lines.append)
    assert all(line.endswith("[complete, skipped]") for line in lines) and len(lines) == 4
    assert all(
        os.stat(os.path.join(out, f)).st_mtime_ns == t for f, t in mtimes.items() if f != MANIFEST
    )


def counting_sample(calls, fail_at=None):
    """nf.sample that counts its calls and raises on call number ``fail_at``."""
    real = nf.sample

    def wrapped(*args, **kwargs):
        calls.append(kwargs["store"])
        if len(calls) == fail_at:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    return wrapped


def test_an_interrupted_sweep_resumes_point_by_point(finished, tmp_path, monkeypatch):
    config, complete_dir, _, _ = finished
    out = tmp_path / "out"
    calls = []
    monkeypatch.setattr(nnft_fast.sampling, "sample", counting_sample(calls, fail_at=3))
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_sweep(config, out)
    status = [p["status"] for p in read_manifest(out)["points"]]
    assert status == ["complete", "complete", "failed", "pending"]
    assert "simulated crash" in read_manifest(out)["points"][2]["error"]
    mtimes = [os.stat(out / f"point_00{i}.h5").st_mtime_ns for i in (0, 1)]
    calls.clear()
    monkeypatch.setattr(nnft_fast.sampling, "sample", counting_sample(calls))
    run_sweep(config, out)
    assert [os.path.basename(c) for c in calls] == ["point_002.h5", "point_003.h5"]
    assert [os.stat(out / f"point_00{i}.h5").st_mtime_ns for i in (0, 1)] == mtimes
    assert all(p["status"] == "complete" for p in read_manifest(out)["points"])
    assert_same_points(out, complete_dir)


def test_a_partially_written_point_store_is_resumed(finished, tmp_path):
    config, complete_dir, _, _ = finished
    out = tmp_path / "out"
    out.mkdir()
    cfg = load_sweep(config).points[1].config

    def crash(done, total):
        if done >= 128:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nf.sample(
            cfg.network,
            cfg.inputs,
            cfg.n_networks,
            cfg.seed,
            batch_size=64,
            store=str(out / "point_001.h5"),
            progress=crash,
        )
    assert nf.store_info(str(out / "point_001.h5"))["committed"] == 128
    lines = []
    run_sweep(config, out, log=lines.append)
    assert lines[1].endswith("[resuming at 128/300 networks]")
    assert_same_points(out, complete_dir)


def test_a_directory_of_another_sweep_is_refused(finished, tmp_path):
    config, _, _, _ = finished
    out = tmp_path / "out"
    run_sweep(config, out)
    other = write(tmp_path, SWEEP.replace("[0.8, 1.2]", "[0.8]"), "other.toml")
    with pytest.raises(SweepError, match="manifest of a different sweep"):
        run_sweep(other, out)
    os.remove(out / MANIFEST)  # the stores alone are checked too
    with pytest.raises(SweepError, match="point_002.h5, point_003.h5, not a point"):
        run_sweep(other, out)
    for name in ("point_002.h5", "point_003.h5"):
        os.remove(out / name)
    changed = write(tmp_path, SWEEP.replace("seed = 5", "seed = 6"), "seed.toml")
    with pytest.raises(SweepError, match="point_000.h5 holds another configuration"):
        run_sweep(changed, out)
    run_sweep(other, out, overwrite=True)  # overwrite replaces: 2 points left
    assert sorted(f for f in os.listdir(out) if f.endswith(".h5")) == [
        "point_000.h5",
        "point_001.h5",
    ]
    assert len(read_manifest(out)["points"]) == 2


def test_an_executor_runs_each_point_sharded(finished, tmp_path):
    config, complete_dir, _, _ = finished
    with ThreadPoolExecutor(2) as executor:
        run_sweep(config, tmp_path / "one", executor=executor, shard_size=300, threads=1)
        run_sweep(config, tmp_path / "three", executor=executor, shard_size=100, threads=1)
    for i in range(4):
        name = f"point_00{i}.h5"
        one, three, plain = (
            stored(d, name) for d in (tmp_path / "one", tmp_path / "three", complete_dir)
        )
        assert_same_statistics(one, plain)  # one shard: bit-identical to nf.sample
        assert np.array_equal(three.accumulator.block_counts, plain.accumulator.block_counts)
        np.testing.assert_allclose(
            three.accumulator.block_sums, plain.accumulator.block_sums, rtol=1e-12, atol=0.0
        )


# --------------------------------------------------------------------------- report


def test_the_report_writes_its_files_with_the_stores_estimates(finished, tmp_path):
    config, out, _, _ = finished
    paths = write_sweep_report(out, tmp_path / "report")
    assert set(paths) == {"kernel", "vertex", "chi", "summary", "csv"}
    assert all(os.path.getsize(p) > 0 for p in paths.values())
    with open(tmp_path / "report" / CSV_NAME) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4
    with open(paths["summary"]) as fh:
        summary = fh.read()
    for row, point in zip(rows, load_sweep(config).points):
        ens = stored(out, point.store)
        assert row["store"] == point.store and row["layer"] == "2"
        assert float(row["network.cw"]) == point.values["network.cw"]
        assert row["network.init"] == point.values["network.init"]
        k = ens.two_point(2)
        assert float(row["K"]) == k.value[0, 0] and float(row["K_err"]) == k.error[0, 0]
        vertex = normalised_vertex(ens, 2)
        assert float(row["VK2"]) == vertex.value and float(row["VK2_err"]) == vertex.error
        par, perp = measured_susceptibilities(ens, 2)
        assert (float(row["chi_par"]), float(row["chi_perp"])) == (par.value, perp.value)
        assert (float(row["chi_par_theory"]), float(row["chi_perp_theory"])) == (
            predicted_susceptibilities(ens, 2)
        )
        assert f"| {point.index} | {point.values['network.cw']:g} |" in summary


def test_the_report_leaves_out_points_not_complete(finished, tmp_path, monkeypatch):
    config, _, _, _ = finished
    out = tmp_path / "out"
    monkeypatch.setattr(nnft_fast.sampling, "sample", counting_sample([], fail_at=2))
    with pytest.raises(RuntimeError):
        run_sweep(config, out)
    paths = write_sweep_report(out)
    with open(paths["csv"]) as fh:
        assert [r["store"] for r in csv.DictReader(fh)] == ["point_000.h5"]
    with open(paths["summary"]) as fh:
        assert "point_001.h5 (network.cw=0.8 network.init=orthogonal, failed)" in fh.read()
