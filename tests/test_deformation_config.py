"""The [deformation] table of cos-net and MLP TOML configs (lambda phi^4, ``nf.Phi4``) and
``nnft run / info / resume / report`` on deformed stores."""

import json
import os

import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.config import ConfigError, load_config, parse_config
from nnft_fast.field_run import FieldRun
from nnft_fast.report import (
    coupling_rows,
    deformed_rows,
    reweighted_shift,
    weights_summary,
    write_report,
)
from nnft_fast.run import EnsembleRun
from nnft_fast.theory import (
    cosnet_propagator,
    kernel_recursion,
    phi4_tree_level,
    quartic_coupling,
)

from ._examples import EXAMPLES
from .test_cli import run_cli
from .test_cli import write_config as write

PHI4 = """
[network]
kind = "cosnet"
dim = 1
width = 16
mass = 1.0
cutoff = 6.0

[points]
values = [[-0.6], [0.0], [0.4], [1.0]]

[run]
n_networks = 3000
seed = 7
quadruples = [[0, 1, 2, 3], [1, 1, 2, 2]]

[deformation]
kind = "phi4"
coupling = 0.8
box = [-1.5, 1.5]
nodes = 40
"""

PHI4_2D = """
[network]
kind = "cosnet"
dim = 2
width = 8
mass = 1.0
cutoff = 4.0

[points]
grid = {shape = [2, 2], spacing = 0.5}

[run]
n_networks = 50

[deformation]
kind = "phi4"
coupling = -0.25
box = [[-1.0, 1.0], [0.0, 2.0]]
nodes = [12, 10]
"""

MLP = """
[network]
widths = [2, 16, 2]
activation = "tanh"
cb = 0.1

[inputs]
n = 3
seed = 1
scale = 0.5

[run]
n_networks = 600
seed = 5

[deformation]
kind = "phi4"
coupling = 0.5
box = [[-1.0, 1.0], [0.0, 1.0]]
nodes = [4, 3]
"""
MLP_BOX = "box = [[-1.0, 1.0], [0.0, 1.0]]"
PHI4_MLP_PNGS = ("two_point.png", "phi4_four_point.png", "phi4_coupling.png")


# ------------------------------------------------------------------ parsing
def test_parse_deformation():
    cfg = parse_config(PHI4)
    d = cfg.deformation
    assert isinstance(d, nf.LocalInteraction) and d.potential == "phi4"
    assert d.config(cfg.network) == {
        "kind": "phi4",
        "coupling": 0.8,
        "box": [[-1.5, 1.5]],
        "nodes": [40],
    }
    two = parse_config(PHI4_2D)
    assert two.deformation.config(two.network) == {
        "kind": "phi4",
        "coupling": -0.25,
        "box": [[-1.0, 1.0], [0.0, 2.0]],
        "nodes": [12, 10],
    }
    # nodes optional: chosen from the cut-off (as nf.Phi4 does); an int coupling is fine
    text = PHI4.replace("nodes = 40\n", "").replace("coupling = 0.8", "coupling = 2")
    default = parse_config(text)
    expected = nf.Phi4(2.0, [-1.5, 1.5]).config(default.network)
    assert default.deformation.config(default.network) == expected
    assert parse_config(PHI4.split("[deformation]")[0]).deformation is None


@pytest.mark.parametrize(
    "old,new,needle",
    [
        ("nodes = 40", "nodes = 40\nnode = 3", "unknown key 'deformation.node'; allowed: kind"),
        (
            "coupling = 0.8",
            'coupling = "0.8"',
            "'deformation.coupling' must be a number (integer or float), got a string",
        ),
        (
            "coupling = 0.8",
            "coupling = true",
            "'deformation.coupling' must be a number (integer or float), got a boolean",
        ),
        ("box = [-1.5, 1.5]", 'box = "all"', "'deformation.box' must be an array, got a string"),
        (
            "nodes = 40",
            "nodes = 40.0",
            "'deformation.nodes' must be an integer or an array, got a float",
        ),
        ('kind = "phi4"', 'kind = "phi6"', "'deformation.kind' must be one of phi4, got 'phi6'"),
        ('kind = "phi4"\n', "", "missing required key 'deformation.kind'"),
        ("coupling = 0.8\n", "", "missing required key 'deformation.coupling'"),
        ("box = [-1.5, 1.5]\n", "", "missing required key 'deformation.box'"),
        ("cutoff = 6.0", "cutoff = 6.0\nn_out = 2", None),  # every output deformed: fine
        ("box = [-1.5, 1.5]", "box = [-1.5, 0.0, 1.5]", "'deformation.box' must be [lo, hi]"),
        ("box = [-1.5, 1.5]", "box = [[-1.5, 1.5], [0, 1]]", "network.dim = 1 pairs"),
        ("box = [-1.5, 1.5]", "box = [-1.5, [1.5]]", "'deformation.box' must be [lo, hi]"),
        ("box = [-1.5, 1.5]", "box = [-1.5, true]", "'deformation.box' must be [lo, hi] or"),
        ("box = [-1.5, 1.5]", 'box = [-1.5, "1"]', "got str values"),
        ("box = [-1.5, 1.5]", "box = [1.5, -1.5]", "'deformation.box': box needs lo < hi"),
        ("box = [-1.5, 1.5]", "box = [-1.5, inf]", "'deformation.box' must be finite numbers"),
        ("box = [-1.5, 1.5]", "box = [0, 1" + "0" * 400 + "]", "must be finite numbers"),
        ("coupling = 0.8", "coupling = nan", "'deformation.coupling': coupling must be finite"),
        ("coupling = 0.8", "coupling = 1" + "0" * 400, "'deformation.coupling' must be a finite"),
        ("nodes = 40", "nodes = 0", "'deformation.nodes': nodes must be >= 1"),
        ("nodes = 40", "nodes = [4, 4]", "'deformation.nodes' must be an integer or have"),
        ("nodes = 40", "nodes = [4.5]", "'deformation.nodes' must be an integer or a list"),
        ("nodes = 40", "nodes = 10000000000000", "'deformation.box' / 'deformation.nodes' needs"),
        ("nodes = 40\n", "", None),  # the default nodes: fine
    ],
)
def test_bad_deformations_exit_2_naming_the_key(tmp_path, capsys, old, new, needle):
    assert old in PHI4
    text = PHI4.replace(old, new, 1)
    if needle is None:
        assert parse_config(text).deformation is not None
        return
    cfg = write(tmp_path, text)
    out = tmp_path / "x.h5"
    code, _, err = run_cli(["run", cfg, "--out", str(out), "--quiet"], capsys)
    assert code == 2, err
    assert needle in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "text,needle",
    [
        (PHI4_2D.replace("box = [[-1.0, 1.0], [0.0, 2.0]]", "box = [[-1.0, 1.0]]"),
         "'deformation.box' must be [lo, hi] or network.dim = 2 pairs"),
        (PHI4_2D.replace("nodes = [12, 10]", "nodes = [12]"),
         "'deformation.nodes' must be an integer or have network.dim = 2 entries, got 1"),
        (PHI4.replace("nodes = 40\n", "").replace("[-1.5, 1.5]", "[-1e9, 1e9]"),
         "the quadrature nodes of [deformation] (at least"),
        (PHI4.replace("[deformation]", "[deformation]\n[deformation.box]"),
         "'deformation.box' must be an array, got a table"),
    ],
)  # fmt: skip
def test_bad_deformation_tables(text, needle):
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert needle in str(info.value)


def test_parse_mlp_deformation():
    """[deformation] of an MLP: the box in its input space R^{n_0}, every output deformed."""
    cfg = parse_config(MLP)
    assert isinstance(cfg.network, nf.Network) and cfg.network.input_dim == 2
    d = cfg.deformation
    assert isinstance(d, nf.LocalInteraction) and d.potential == "phi4"
    assert (d.coupling, d.box, d.nodes) == (0.5, [[-1.0, 1.0], [0.0, 1.0]], [4, 3])
    # one pair for every input dimension; nodes optional (the run chooses them by probing)
    text = MLP.replace(MLP_BOX, "box = [0, 1]").replace("nodes = [4, 3]\n", "")
    default = parse_config(text).deformation
    assert default.box == [0, 1] and default.nodes is None
    assert parse_config(MLP.split("[deformation]")[0]).deformation is None


@pytest.mark.parametrize(
    "changes,needle",
    [
        ([(MLP_BOX, "box = [[-1.0, 1.0]]")],
         "'deformation.box' must be [lo, hi] or network.widths[0] = 2 pairs [[lo, hi], ...]"),
        ([(MLP_BOX, "box = [[-1.0, 1.0], [0.0, 1.0], [0.0, 1.0]]")],
         "'deformation.box' must be [lo, hi] or network.widths[0] = 2 pairs"),
        ([("widths = [2, 16, 2]", "widths = [3, 16, 2]")],
         "'deformation.box' must be [lo, hi] or network.widths[0] = 3 pairs"),
        ([(MLP_BOX, "box = [[-1.0, 1.0], [1.0, 0.0]]")],
         "'deformation.box': box needs lo < hi in every dimension; dimension 1"),
        ([("nodes = [4, 3]", "nodes = [4]")],
         "'deformation.nodes' must be an integer or have network.widths[0] = 2 entries, got 1"),
        ([("nodes = [4, 3]", "nodes = [4, 0]")], "'deformation.nodes': nodes must be >= 1"),
        ([("nodes = [4, 3]", "nodes = 100000000")],
         "'deformation.box' / 'deformation.nodes' needs"),
        # nodes chosen by the run: n_0 = 4 makes its first estimate (16^4 nodes) too large
        ([("widths = [2, 16, 2]", "widths = [4, 16, 2]"), (MLP_BOX, "box = [0, 1]"),
          ("nodes = [4, 3]\n", "")],
         "'deformation.nodes': the tolerance tol = 1e-10 could not be reached"),
        # ... and n_0 = 64 needs at least 8^64 nodes: refused at once, no hang
        ([("widths = [2, 16, 2]", "widths = [64, 16, 2]"), (MLP_BOX, "box = [0, 1]"),
          ("nodes = [4, 3]\n", "")],
         "the quadrature nodes of [deformation] (at least 6.28e+57"),
    ],
)  # fmt: skip
def test_bad_mlp_deformations_exit_2_naming_the_key(tmp_path, capsys, changes, needle):
    text = MLP
    for old, new in changes:
        assert old in text
        text = text.replace(old, new, 1)
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert needle in str(info.value)
    out = tmp_path / "x.h5"
    code, _, err = run_cli(["run", write(tmp_path, text), "--out", str(out), "--quiet"], capsys)
    assert code == 2 and needle in err and "Traceback" not in err
    assert not out.exists()


def test_example_config_parses():
    cfg = load_config(os.path.join(EXAMPLES, "phi4_1d.toml"))
    assert isinstance(cfg.network, nf.CosNet) and cfg.network.dim == 1
    assert cfg.network.n_out == 1 and cfg.out == "phi4_1d.h5"
    assert 4 <= cfg.inputs.shape[0] <= 16  # the full four-point tensor and the heat map
    d = cfg.deformation.config(cfg.network)
    assert d["kind"] == "phi4" and d["coupling"] > 0
    assert np.all((cfg.inputs > d["box"][0][0]) & (cfg.inputs < d["box"][0][1]))
    assert cfg.n_networks <= 400_000  # quick: well under a minute on 2 cores


# ------------------------------------------------------------------ the command line
def _weights(cfg):
    """w_e = exp(-coupling s_e) of every network of the config, from the run itself (s is
    the last statistic of every layer)."""
    if isinstance(cfg.network, nf.CosNet):
        run = FieldRun(
            cfg.network,
            cfg.inputs,
            cfg.seed,
            quadruples=cfg.quadruples,
            deformation=cfg.deformation,
        )
    else:
        run = EnsembleRun(cfg.network, cfg.inputs, cfg.seed, deformation=cfg.deformation)
    stats, _, _ = run.compute(0, cfg.n_networks)
    return np.exp(-cfg.deformation.coupling * stats[:, -1, -1])


def _check_weights(weights, cfg):
    """``nnft info``'s weights against the networks' own w = exp(-coupling s)."""
    w = _weights(cfg)
    n = cfg.n_networks
    assert weights["coupling"] == cfg.deformation.coupling and weights["n_networks"] == n
    ess = w.sum() ** 2 / (w * w).sum()
    np.testing.assert_allclose(weights["effective_sample_size"], ess, rtol=1e-10)
    np.testing.assert_allclose(weights["effective_fraction"], ess / n, rtol=1e-10)
    np.testing.assert_allclose(weights["max_weight_share"], w.max() / w.sum(), rtol=1e-10)
    assert "effective sample size" in weights["summary"]
    assert f"of {n:,} networks" in weights["summary"]


def _info(out, capsys, deformation):
    """``nnft info`` of a deformed store as a dict; its stored description of the
    deformation is ``deformation``."""
    code, text, _ = run_cli(["info", out, "--json"], capsys)
    assert code == 0
    info = json.loads(text)
    assert info["config"]["deformation"] == deformation
    return info


def _resume_unchanged(out, capsys):
    """``nnft resume`` of a complete store: every network committed, the sums unchanged."""
    before = nf.open(out)
    code, text, _ = run_cli(["resume", out], capsys)
    assert code == 0 and f"{before.n_networks:,} networks committed" in text
    assert np.array_equal(nf.open(out).accumulator.block_sums, before.accumulator.block_sums)


def _report(tmp_path, out, capsys, names):
    """``nnft report`` of the store ``out`` into tmp_path/report: the PNGs ``names`` exist,
    hold a picture and are announced; returns summary.md's text."""
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    rep = tmp_path / "report"
    code, text, err = run_cli(["report", out, "--out", str(rep)], capsys)
    assert code == 0, err
    for name in names:
        img = mpimg.imread(rep / name)
        assert img.shape[0] > 100 and float(np.std(img[..., :3])) > 0.01, name
        assert f"wrote {rep / name}" in text
    return (rep / "summary.md").read_text()


def test_run_info_resume_report(tmp_path, capsys):
    cfg_path = write(tmp_path, PHI4)
    out = str(tmp_path / "phi4.h5")
    code, text, err = run_cli(["run", cfg_path, "--out", out, "--batch-size", "512"], capsys)
    assert code == 0, err
    assert "weights: coupling 0.8: effective sample size" in text
    cfg = load_config(cfg_path)
    direct = nf.sample(
        cfg.network,
        cfg.inputs,
        cfg.n_networks,
        cfg.seed,
        quadruples=cfg.quadruples,
        deformation=cfg.deformation,
    )
    stored = nf.open(out)
    assert stored.is_deformed and stored.coupling == 0.8
    assert np.array_equal(stored.accumulator.block_sums, direct.accumulator.block_sums)

    deformation = {"kind": "phi4", "coupling": 0.8, "box": [[-1.5, 1.5]], "nodes": [40]}
    info = _info(out, capsys, deformation)
    weights = info["weights"]
    _check_weights(weights, cfg)
    assert 0.5 < weights["effective_fraction"] < 1.0
    assert info["quadrature"]["nodes"] == [40] and not info["quadrature"]["empirical"]
    assert "40 Gauss-Legendre nodes, quadrature error bound" in info["quadrature"]["summary"]

    _resume_unchanged(out, capsys)

    names = ("propagator.png", "four_point.png", "phi4_four_point.png", "phi4_coupling.png")
    summary = _report(tmp_path, out, capsys, names)
    assert "### φ⁴ deformation of cos-net d=1, N=16" in summary
    assert "with λ = 0.8 on the box [[-1.5, 1.5]] (40 Gauss-Legendre nodes" in summary
    assert f"{weights['effective_sample_size']:,.1f} of 3,000 networks" in summary
    assert "| all index quadruples | 35 |" in summary  # C(4 + 3, 4) multisets
    assert "| sampled quadruples | 2 |" in summary
    assert "| diagonal a = b |" in summary and "| off-diagonal a ≠ b |" in summary


def test_mlp_run_info_resume_report(tmp_path, capsys):
    """A deformed MLP from TOML: the same numbers as nf.sample with nf.Phi4, its store's
    weights and empirical quadrature rule in ``nnft info``, resumed unchanged, and the
    phi^4 plots of its output layer (both outputs deformed) in ``nnft report``."""
    cfg_path = write(tmp_path, MLP)
    out = str(tmp_path / "mlp.h5")
    code, text, err = run_cli(["run", cfg_path, "--out", out, "--batch-size", "128"], capsys)
    assert code == 0, err
    assert "weights: coupling 0.5: effective sample size" in text
    assert "quadrature: 4 x 3 Gauss-Legendre nodes, empirical error estimate" in text
    cfg = load_config(cfg_path)
    box = [[-1.0, 1.0], [0.0, 1.0]]
    direct = nf.sample(cfg.network, cfg.inputs, 600, 5, deformation=nf.Phi4(0.5, box, [4, 3]))
    stored = nf.open(out)
    assert stored.is_deformed and stored.coupling == 0.5
    assert np.array_equal(stored.accumulator.block_sums, direct.accumulator.block_sums)
    for view in ("first_order", "reweighted"):
        a, b = getattr(stored, view).four_point(), getattr(direct, view).four_point()
        assert np.array_equal(a.value, b.value) and np.array_equal(a.error, b.error)
    rule = stored.quadrature
    assert rule.empirical and rule.nodes.tolist() == [4, 3] and rule.box.tolist() == box
    assert rule.error_bound == direct.quadrature.error_bound

    info = _info(out, capsys, {"kind": "phi4", "coupling": 0.5, "box": box, "nodes": [4, 3]})
    _check_weights(info["weights"], cfg)
    quadrature = info["quadrature"]
    assert quadrature["empirical"] and quadrature["error"] == rule.error_bound
    assert quadrature["summary"] == (
        f"4 x 3 Gauss-Legendre nodes, empirical error estimate {rule.error_bound:.2g}"
    )

    _resume_unchanged(out, capsys)

    # the report's sets: the output layer against tree level with the rule's nodes
    (first,) = deformed_rows(stored, rule)
    tree = phi4_tree_level(cfg.network, cfg.inputs, box, nodes=[4, 3])
    index = tuple(np.array(sorted({tuple(sorted(q)) for q in np.ndindex(3, 3, 3, 3)})).T)
    np.testing.assert_array_equal(first["exact"], tree[index])
    np.testing.assert_array_equal(first["value"], stored.first_order.four_point(2).value[index])
    coupling = coupling_rows(stored, rule)
    k = kernel_recursion(cfg.network, cfg.inputs)[-1]
    np.testing.assert_allclose(coupling["tree"], quartic_coupling(k, tree)[0], rtol=1e-12)

    summary = _report(tmp_path, out, capsys, PHI4_MLP_PNGS)
    assert "### φ⁴ deformation of the outputs of the MLP tanh gaussian (n=16, N=600)" in summary
    assert (
        "S_int = (λ/4!) Σ_i ∫ φ_i⁴ (i = 1..2) with λ = 0.5 on the box [[-1.0, 1.0], [0.0, 1.0]] "
        "(4 x 3 Gauss-Legendre nodes, empirical error estimate" in summary
    )
    assert f"{info['weights']['effective_sample_size']:,.1f} of 600 networks" in summary
    assert "| all index quadruples | 15 |" in summary  # C(3 + 3, 4) multisets
    assert "| diagonal a = b |" in summary and "| off-diagonal a ≠ b |" in summary
    assert "| 2 |" in summary  # the free table of both layers beside it


def test_mlp_example_run_info_resume_report(tmp_path, capsys):
    """examples/phi4_mlp.toml end to end on fewer networks: its nodes chosen by probing
    (empirical estimate below 1e-10), then info, resume and report."""
    with open(os.path.join(EXAMPLES, "phi4_mlp.toml")) as fh:
        text = fh.read()
    assert "n_networks = 20000" in text and "# nodes = " in text  # nodes chosen by the run
    cfg = parse_config(text)
    assert isinstance(cfg.network, nf.Network) and cfg.network.widths == (1, 64, 64, 1)
    assert cfg.out == "phi4_mlp.h5" and cfg.deformation.coupling == 0.1
    box = np.asarray(cfg.deformation.box)
    assert np.all((cfg.inputs >= box[0]) & (cfg.inputs <= box[1]))
    cfg_path = write(tmp_path, text.replace("n_networks = 20000", "n_networks = 400"))
    out = str(tmp_path / "phi4_mlp.h5")
    code, text, err = run_cli(["run", cfg_path, "--out", out], capsys)
    assert code == 0, err
    assert "400 networks" in text and "empirical error estimate" in text
    code, text, _ = run_cli(["info", out, "--json"], capsys)
    info = json.loads(text)
    assert code == 0 and info["committed"] == 400 and info["weights"]["n_networks"] == 400
    assert info["quadrature"]["empirical"] and info["quadrature"]["error"] <= 1e-10
    code, text, _ = run_cli(["resume", out], capsys)
    assert code == 0 and "400 networks committed" in text
    summary = _report(tmp_path, out, capsys, PHI4_MLP_PNGS)
    assert "### φ⁴ deformation of the outputs of the MLP tanh gaussian (n=64, N=400)" in summary
    assert "- S_int = (λ/4!) ∫ φ⁴ with λ = 0.1 on the box [[-1.0, 1.0]] (" in summary
    assert "| 3 | " in summary and "| — |" in summary  # one output neuron: no vertex


def test_shift_and_coupling_estimates():
    """(G4c_lambda - G4c_0) / lambda tends to the first order; the coupling heat map is
    quartic_coupling of the free G and the first order, its tree level of the exact G."""
    cfg = parse_config(PHI4)
    kw = dict(quadruples=cfg.quadruples)
    small = nf.sample(
        cfg.network, cfg.inputs, 2000, 3, deformation=nf.Phi4(1e-7, [-1.5, 1.5]), **kw
    )
    first = small.first_order.four_point()
    shift = reweighted_shift(small)
    # the ratio estimator's lambda -> 0 limit is the plug-in covariance, the first order the
    # unbiased U-statistic: they differ by O(1/n), well inside the errors
    assert np.all(np.abs(shift.value - first.value) < 0.2 * first.error)
    np.testing.assert_allclose(shift.error, first.error, rtol=0.05)
    tuples = reweighted_shift(small, quadruples=True)
    first = small.first_order.connected_four_point()
    assert np.all(np.abs(tuples.value - first.value) < 0.2 * first.error)
    # at a finite coupling: the difference of the reweighted and the free estimates
    ens = nf.sample(cfg.network, cfg.inputs, 2000, 3, deformation=cfg.deformation, **kw)
    shift = reweighted_shift(ens)
    run = FieldRun(cfg.network, cfg.inputs, 3, deformation=cfg.deformation, **kw)
    phi = run.preactivations(0, 2000)[0][:, 0, :]  # (n, B)
    w = np.exp(-0.8 * run.compute(0, 2000)[0][:, 0, -1])

    def connected(weights):  # the ratio (plug-in) estimator with these weights
        g = np.einsum("e,ea,eb->ab", weights, phi, phi) / weights.sum()
        q = np.einsum("e,ea,eb,ec,ed->abcd", weights, phi, phi, phi, phi) / weights.sum()
        return q - sum(np.einsum(f"ab,cd->{p}", g, g) for p in ("abcd", "acbd", "acdb"))

    expected = (connected(w) - connected(np.ones_like(w))) / 0.8
    np.testing.assert_allclose(shift.value, expected, rtol=1e-8, atol=1e-12)
    block = np.arange(2000) % ens.accumulator.n_blocks  # network e is in block e mod n_blocks
    replicas = np.array(
        [(connected(w * (block != b)) - connected(1.0 * (block != b))) / 0.8 for b in set(block)]
    )
    g = len(replicas)
    error = np.sqrt((g - 1) / g * ((replicas - replicas.mean(axis=0)) ** 2).sum(axis=0))
    np.testing.assert_allclose(shift.error, error, rtol=1e-6)  # the difference's jackknife

    rule = cfg.deformation.rule(cfg.network)
    c = coupling_rows(ens, rule)
    lam, _ = quartic_coupling(ens.two_point().value, ens.first_order.four_point().value)
    np.testing.assert_allclose(c["value"], lam, rtol=1e-9, atol=1e-12)
    assert c["error"].shape == lam.shape and np.all(np.isfinite(c["error"]))
    r = np.abs(cfg.inputs - cfg.inputs.T)
    tree, _ = quartic_coupling(
        cosnet_propagator(cfg.network, r),
        phi4_tree_level(cfg.network, cfg.inputs, rule.box, nodes=40),
    )
    np.testing.assert_allclose(c["tree"], tree, rtol=1e-12)
    assert np.einsum("aaaa->a", tree).min() > 0  # +lambda/4! phi^4: a positive coupling


def test_report_in_memory_and_zero_coupling(tmp_path):
    """An ensemble in memory has no box (its potential may be a user's): the weights
    only; coupling 0 has no reweighted shift, the first order is still compared."""
    pytest.importorskip("matplotlib")
    cfg = parse_config(PHI4)
    ens = nf.sample(cfg.network, cfg.inputs, 300, 0, deformation=cfg.deformation)
    paths = write_report([ens], tmp_path / "mem")
    assert "phi4_G4c" not in paths and "phi4_coupling" not in paths
    summary = open(paths["summary"]).read()
    assert "in memory: no box known" in summary and "effective sample size" in summary
    assert weights_summary(ens)["effective_sample_size"] == pytest.approx(
        ens.reweighted.effective_sample_size()
    )
    zero = str(tmp_path / "zero.h5")
    free = nf.sample(
        cfg.network, cfg.inputs, 300, 0, deformation=nf.Phi4(0.0, [-1.5, 1.5], 40), store=zero
    )
    assert weights_summary(free)["effective_fraction"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="coupling is 0"):
        reweighted_shift(free)
    paths = write_report([nf.open(zero)], tmp_path / "zero")
    assert "phi4_G4c" in paths and "phi4_coupling" in paths
    assert "| all index quadruples | 35 |" in open(paths["summary"]).read()
