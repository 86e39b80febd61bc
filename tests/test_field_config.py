"""Cos-net TOML configs (``[network] kind = "cosnet"``, ``[points]``), ``nf.grid_points``,
and ``nnft run / info / resume / report`` on a cos-net store."""

import json
import os

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.config import ConfigError, load_config, parse_config

from ._examples import EXAMPLES
from .test_cli import run_cli
from .test_cli import write_config as write

FIELD = """
[network]
kind = "cosnet"
dim = 2
width = 16
mass = 1.0
cutoff = 6.0
n_out = 2

[points]
grid = {shape = [3, 3], spacing = 0.5, origin = [-0.5, 0.0]}

[run]
n_networks = 1500
seed = 4
quadruples = [[0, 1, 2, 3], [0, 0, 4, 4], [1, 5, 7, 8]]
sextuples = [[0, 1, 2, 3, 4, 5]]
"""

GRID = "grid = {shape = [3, 3], spacing = 0.5, origin = [-0.5, 0.0]}"

MLP = """
[network]
kind = "mlp"
widths = [2, 8, 8]

[inputs]
values = [[1.0, 0.5], [0.1, -1.0]]

[run]
n_networks = 300
"""


# ------------------------------------------------------------------ grid_points
def test_grid_points_row_major():
    x = nf.grid_points([2, 3], 0.5, origin=[1.0, -1.0])
    expected = [[1.0 + 0.5 * i, -1.0 + 0.5 * j] for i in range(2) for j in range(3)]
    assert x.dtype == np.float64 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, expected)
    y = nf.grid_points((4, 2, 3), [0.1, 1.0, 2.0])
    assert y.shape == (24, 3)
    row = np.ravel_multi_index((3, 1, 2), (4, 2, 3))
    np.testing.assert_allclose(y[row], [0.3, 1.0, 4.0])
    np.testing.assert_array_equal(nf.grid_points([3], 2), [[0.0], [2.0], [4.0]])
    np.testing.assert_array_equal(nf.grid_points([1, 1], 1.0, origin=7), [[7.0, 7.0]])


@pytest.mark.parametrize(
    "args,error,needle",
    [
        (([], 1.0), ValueError, "shape must name at least one axis"),
        ((4, 1.0), TypeError, "shape must be a sequence"),
        (([2, 0], 1.0), ValueError, "shape must hold counts >= 1"),
        (([2, 2.0], 1.0), TypeError, "shape must hold integers"),
        (([2, True], 1.0), TypeError, "shape must hold integers"),
        (([2, 2], 0.0), ValueError, "spacing must be > 0"),
        (([2, 2], -1.0), ValueError, "spacing must be > 0"),
        (([2, 2], [1.0, 2.0, 3.0]), ValueError, "spacing must be a number or have one entry"),
        (([2, 2], "1"), TypeError, "spacing must be a real number"),
        (([2, 2], float("inf")), ValueError, "spacing must be finite"),
        (([2, 2], 1.0, [0.0, float("nan")]), ValueError, "origin must be finite"),
        (([2, 2], 1.0, [0.0]), ValueError, None),  # one origin for every axis: fine
        (([10**9] * 3, 1.0), ValueError, "needs ~"),
        (([10**200] * 2, 1.0), ValueError, "needs ~"),
    ],
)
def test_grid_points_refusals(args, error, needle):
    if needle is None:
        assert nf.grid_points(*args).shape == (4, 2)
        return
    with pytest.raises(error, match=needle.replace("(", r"\(")):
        nf.grid_points(*args)


# ------------------------------------------------------------------ parsing
def test_parse_field_config():
    cfg = parse_config(FIELD)
    net = cfg.network
    assert isinstance(net, nf.CosNet)
    assert (net.dim, net.width, net.mass, net.cutoff, net.n_out) == (2, 16, 1.0, 6.0, 2)
    assert net.alpha == 0.0 and net.amplitude == "gaussian" and net.momenta == "propagator"
    np.testing.assert_array_equal(cfg.inputs, nf.grid_points([3, 3], 0.5, [-0.5, 0.0]))
    assert cfg.quadruples.shape == (3, 4) and cfg.sextuples.shape == (1, 6)
    assert cfg.observables is None and cfg.n_networks == 1500 and cfg.seed == 4
    values = FIELD.replace(GRID, "values = [[0.0, 0.0], [0.5, 0], [1, 1]]")
    values = values.replace("[[0, 1, 2, 3], [0, 0, 4, 4], [1, 5, 7, 8]]", "[[0, 1, 1, 2]]")
    values = values.replace("sextuples = [[0, 1, 2, 3, 4, 5]]\n", "")
    cfg = parse_config(values)
    np.testing.assert_array_equal(cfg.inputs, [[0, 0], [0.5, 0], [1, 1]])
    assert cfg.sextuples is None
    gauss = parse_config(
        '[network]\nkind = "cosnet"\ndim = 1\nwidth = 8\nmomenta = "gaussian"\nlength = 2\n'
        'amplitude = "constant"\n[points]\n[points.grid]\nshape = [5]\n'
        '[run]\nn_networks = 10\nobservables = ["two_point"]\n'
    )
    assert gauss.network == nf.CosNet.gaussian_kernel(1, 8, 2.0, 1.0, "constant")
    assert gauss.inputs.shape == (5, 1) and gauss.observables == ("two_point",)
    assert parse_config(MLP).network.widths == (2, 8, 8)  # kind = "mlp" spelled out


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ("width = 16", "width = 16\nwidths = [2, 4]", "unknown key 'network.widths'"),
        ("mass = 1.0", "mas = 1.0", "unknown key 'network.mas'"),
        (
            "mass = 1.0",
            'mass = "one"',
            "'network.mass' must be a number (integer or float), got a string",
        ),
        ("width = 16", "width = 16.5", "'network.width' must be an integer, got a float"),
        ("n_out = 2", "n_out = true", "'network.n_out' must be an integer, got a boolean"),
        ('kind = "cosnet"', 'kind = "gaussnet"', "'network.kind' must be one of mlp, cosnet"),
        ('kind = "cosnet"', "kind = 1", "'network.kind' must be a string, got an integer"),
        ("mass = 1.0", "", "missing required key 'network.mass'"),
        ("dim = 2", "", "missing required key 'network.dim'"),
        ("mass = 1.0", "mass = -1.0", "[network]: mass must be > 0"),
        ("n_out = 2", 'n_out = 2\namplitude = "cauchy"', "[network]: amplitude must be one of"),
        ("n_out = 2", 'n_out = 2\nmomenta = "gaussian"', "'network.mass' belongs to momenta"),
        ("n_out = 2", 'n_out = 2\nmomenta = "flat"', "'network.momenta' must be one of"),
        ("n_out = 2", "n_out = 2\nlength = 1.0", "'network.length' belongs to momenta"),
        ("[points]", "[inputs]", "unknown table [inputs] for network.kind = 'cosnet'"),
        ("[points]", "[field]", "unknown table [field] for network.kind = 'cosnet'"),
        ("spacing = 0.5, ", "spacing = 0.5, step = 1, ", "unknown key 'points.grid.step'"),
        (
            "spacing = 0.5",
            'spacing = "0.5"',
            "'points.grid.spacing' must be a number (integer or float) or an array, got a string",
        ),
        ("spacing = 0.5", "spacing = 0.0", "'points.grid': spacing must be > 0"),
        ("shape = [3, 3]", "shape = [3, 3, 3]", "'points.grid.shape' has 3 axes but network.dim"),
        ("shape = [3, 3]", "shape = [3, 0]", "'points.grid': shape must hold counts >= 1"),
        ("shape = [3, 3]", "shape = [3, 2.5]", "'points.grid': shape must hold integers"),
        ("shape = [3, 3], ", "", "missing required key 'points.grid.shape'"),
        ("origin = [-0.5, 0.0]", "origin = [0.0]", "'points.grid.origin' must be a number"),
        ("[points]\ngrid", "[points]\nvalues = [[0.0, 0.0]]\ngrid", "exclude each other"),
        ("grid = {", "values = [[0.0, 0.0, 1.0]]\nx = {", "unknown key 'points.x'"),
        ("grid = {", 'values = [[0.0, "a"]]\nx = {', "unknown key 'points.x'"),
        ("[1, 5, 7, 8]", "[1, 5, 7, 9]", "'run.quadruples' hold point indices outside [0, 9)"),
        ("[1, 5, 7, 8]", "[1, 5, 7]", "'run.quadruples' must be an integer array of shape"),
        (
            "[[0, 1, 2, 3], [0, 0, 4, 4], [1, 5, 7, 8]]",
            "[[0, 1, 2]]",
            "'run.quadruples' must have shape (T, 4), got (1, 3)",
        ),
        ("[1, 5, 7, 8]", "[1, 5, 7, 8.0]", "'run.quadruples' must be a list of rows of 4"),
        ("[[0, 1, 2, 3, 4, 5]]", "[[0, 1, 2, 3, 4, -1]]", "'run.sextuples' hold point indices"),
        (
            "sextuples = [[",
            "sextuples = 3\nx = [[",
            "'run.sextuples' must be an array, got an integer",
        ),
        ("seed = 4", "seed = 4\nlambda_b = 1.0", "unknown key 'run.lambda_b'"),
        ("[run]\nn_networks = 1500", "[run]", "missing required key 'run.n_networks'"),
    ],
)
def test_bad_field_configs_exit_2_naming_the_key(tmp_path, capsys, old, new, needle):
    assert old in FIELD
    cfg = write(tmp_path, FIELD.replace(old, new, 1))
    out = tmp_path / "x.h5"
    code, _, err = run_cli(["run", cfg, "--out", str(out), "--quiet"], capsys)
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "text,needle",
    [
        (FIELD.replace("[points]\n" + GRID, ""), "missing table [points]"),
        (FIELD.replace(GRID, ""), "[points] needs values = [[...], ...] or grid"),
        (FIELD.replace(GRID, 'values = [[0.0, "a"]]'),
         "'points.values' must be a list of numeric rows, got str values"),
        (FIELD.replace(GRID, "values = [[0.0, 1.0, 2.0]]"),
         "'points.values' must have rows of length network.dim = 2"),
        (MLP + "\n[points]\nvalues = [[0.0]]\n",
         "unknown table [points]; allowed: network, inputs, run, store, deformation "
         "([points] is for network.kind = 'cosnet')"),
        (MLP.replace('kind = "mlp"', 'kind = "mlp"\ndim = 2'), "unknown key 'network.dim'"),
        (MLP.replace("n_networks = 300", "n_networks = 300\nquadruples = [[0, 0, 0, 0]]"),
         "unknown key 'run.quadruples'"),
    ],
)  # fmt: skip
def test_bad_tables(text, needle):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert needle in str(info.value)


def test_example_config_parses():
    cfg = load_config(os.path.join(EXAMPLES, "free_scalar_3d.toml"))
    assert isinstance(cfg.network, nf.CosNet) and cfg.network.dim == 3
    assert cfg.inputs.shape == (64, 3) and cfg.out == "free_scalar_3d.h5"
    assert len(cfg.quadruples) >= 3 and len(cfg.sextuples) >= 1


# ------------------------------------------------------------------ the command line
def test_run_info_resume_report(tmp_path, capsys):
    cfg = write(tmp_path, FIELD)
    out = str(tmp_path / "field.h5")
    code, _, err = run_cli(["run", cfg, "--out", out, "--quiet", "--batch-size", "256"], capsys)
    assert code == 0, err
    parsed = load_config(cfg)
    direct = nf.sample(
        parsed.network,
        parsed.inputs,
        1500,
        4,
        quadruples=parsed.quadruples,
        sextuples=parsed.sextuples,
    )
    stored = nf.open(out)
    assert isinstance(stored, nf.FieldEnsemble) and stored.n_networks == 1500
    assert np.array_equal(stored.accumulator.block_sums, direct.accumulator.block_sums)
    np.testing.assert_array_equal(stored.quadruples, parsed.quadruples)

    code, text, _ = run_cli(["info", out, "--json"], capsys)
    info = json.loads(text)
    assert code == 0 and info["committed"] == 1500
    assert info["config"]["network"]["kind"] == "cosnet" and info["config"]["seed"] == 4
    assert info["config"]["sextuples"] == [[0, 1, 2, 3, 4, 5]]
    code, text, _ = run_cli(["resume", out, "--quiet"], capsys)
    assert code == 0
    code, text, _ = run_cli(["resume", out], capsys)
    assert code == 0 and "1,500 networks committed" in text

    mlp_cfg = write(tmp_path, MLP, "mlp.toml")
    mlp = str(tmp_path / "mlp.h5")
    assert run_cli(["run", mlp_cfg, "--out", mlp, "--quiet"], capsys)[0] == 0
    rep = tmp_path / "report"
    code, text, err = run_cli(["report", out, mlp, "--out", str(rep)], capsys)
    assert code == 0, err
    import matplotlib.image as mpimg

    for name in ("propagator.png", "four_point.png", "six_point.png", "two_point.png"):
        img = mpimg.imread(rep / name)
        assert img.shape[0] > 100 and float(np.std(img[..., :3])) > 0.01, name
        assert f"wrote {rep / name}" in text
    summary = (rep / "summary.md").read_text()
    assert "cos-net d=2, N=16" in summary and "| G(r) measured | G(r) exact |" in summary
    assert "| G4c | all index quadruples | 495 |" in summary  # C(9 + 3, 4) multisets
    assert "| G4c | sampled quadruples | 3 |" in summary
    assert "| G6c | sampled sextuples | 1 |" in summary
    assert "relu gaussian" in summary  # the MLP's table beside it


def test_field_report_without_four_point(tmp_path, capsys):
    """Two-point statistics only: propagator.png alone, no four- or six-point plots."""
    text = FIELD.replace("quadruples = [[0, 1, 2, 3], [0, 0, 4, 4], [1, 5, 7, 8]]\n", "")
    text = text.replace("sextuples = [[0, 1, 2, 3, 4, 5]]", 'observables = ["two_point"]')
    cfg = write(tmp_path, text)
    out = str(tmp_path / "g.h5")
    assert run_cli(["run", cfg, "--out", out, "--quiet"], capsys)[0] == 0
    rep = tmp_path / "rep"
    code, _, err = run_cli(["report", out, "--out", str(rep)], capsys)
    assert code == 0, err
    assert sorted(os.listdir(rep)) == ["propagator.png", "summary.md"]
    summary = (rep / "summary.md").read_text()
    assert "G4c" not in summary and "| G(r) | G(r) | 6 |" in summary  # 6 separations
