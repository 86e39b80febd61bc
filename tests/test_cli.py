"""Command line `nnft` and TOML configs: runs, refusals with exit code 2, reports."""

import json
import os
import stat
import subprocess
import sys

import h5py
import numpy as np
import pytest

import nnft_fast as nf
from nnft_fast.cli import main
from nnft_fast.config import ConfigError, load_config, parse_config
from nnft_fast.sweep import load_sweep

from ._examples import EXAMPLES

SMALL = """
[network]
widths = [4, 8, 8, 8]
activation = "relu"
init = "{init}"
cw = 2.0

[inputs]
values = [[1.0, 0.5, -0.5, 0.2], [0.1, -1.0, 0.3, 0.7]]

[run]
n_networks = {n}
seed = 3
"""


def write_config(tmp_path, text, name="run.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def run_cli(args, capsys):
    """(exit code, stdout, stderr) of ``nnft ARGS`` inside this process."""
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_run_writes_the_same_ensemble_as_the_api(tmp_path, capsys):
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=600))
    out = str(tmp_path / "run.h5")
    code, _, err = run_cli(["run", cfg, "--out", out, "--quiet", "--batch-size", "64"], capsys)
    assert code == 0, err
    parsed = load_config(cfg)
    direct = nf.sample(parsed.network, parsed.inputs, 600, 3)
    stored = nf.open(out)
    assert np.array_equal(stored.accumulator.block_sums, direct.accumulator.block_sums)
    assert stored.n_networks == 600


def test_existing_output_needs_overwrite(tmp_path, capsys):
    cfg = write_config(tmp_path, SMALL.format(init="orthogonal", n=100))
    out = str(tmp_path / "run.h5")
    assert run_cli(["run", cfg, "--out", out, "--quiet"], capsys)[0] == 0
    code, _, err = run_cli(["run", cfg, "--out", out, "--quiet"], capsys)
    assert code == 2 and "exists" in err and "--overwrite" in err
    assert run_cli(["run", cfg, "--out", out, "--quiet", "--overwrite"], capsys)[0] == 0


@pytest.mark.parametrize(
    "text,needle",
    [
        (SMALL.format(init="gaussian", n=10) + "\n[extra]\nx = 1\n", "unknown table [extra]"),
        (
            SMALL.format(init="gaussian", n=10).replace("seed = 3", "seed = 3\nsede = 4"),
            "unknown key 'run.sede'",
        ),
        (
            SMALL.format(init="gaussian", n=10).replace('activation = "relu"', "activation = 3"),
            "'network.activation' must be a string",
        ),
        (
            SMALL.format(init="gaussian", n=10).replace("widths = [4, 8, 8, 8]", "widths = [4, 0]"),
            "width must be >= 1",
        ),
        (SMALL.format(init="gaussian", n=1), "n_networks must be >= 2"),
        (
            SMALL.format(init="gaussian", n=10).replace('init = "gaussian"', 'init = "cauchy"'),
            "unknown init",
        ),
        (
            SMALL.format(init="gaussian", n=10).replace("cw = 2.0", "cw = -1.0"),
            "cw must be non-negative",
        ),
        (
            SMALL.format(init="gaussian", n=10).replace("[[1.0, 0.5, -0.5, 0.2],", "[[1.0, 0.5],"),
            "inputs.values",
        ),
        ("[network\nwidths = 3", "malformed TOML"),
        (
            SMALL.format(init="gaussian", n=10).replace("[run]\nn_networks = 10", "[run]"),
            "missing required key 'run.n_networks'",
        ),
        (
            SMALL.format(init="gaussian", n=10) + '\n[store]\nout = ""\n',
            "'store.out' must be a file path, got an empty string",
        ),
        (
            SMALL.format(init="gaussian", n=10).replace(
                "values = [[1.0, 0.5, -0.5, 0.2], [0.1, -1.0, 0.3, 0.7]]", "n = 1e11"
            ),
            "'inputs.n' must be an integer, got a float",
        ),
        (
            SMALL.format(init="gaussian", n=10).replace(
                "values = [[1.0, 0.5, -0.5, 0.2], [0.1, -1.0, 0.3, 0.7]]", "n = 1000000000000000"
            ),
            "'inputs.n' = 1000000000000000 needs ~32.0 PB of memory",
        ),
        (
            SMALL.format(init="gaussian", n=10).replace(
                "widths = [4, 8, 8, 8]", "widths = [4, 4611686018427387904]"
            ),
            "this run needs ~",
        ),
    ],
)
def test_bad_configs_exit_2_naming_the_problem(tmp_path, capsys, text, needle):
    cfg = write_config(tmp_path, text)
    code, _, err = run_cli(["run", cfg, "--out", str(tmp_path / "x.h5"), "--quiet"], capsys)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err
    assert not os.path.exists(tmp_path / "x.h5") or needle == "n_networks must be >= 2"


@pytest.mark.parametrize(
    "option,value,needle",
    [
        ("--batch-size", "0", "argument --batch-size: must be >= 1, got 0"),
        ("--batch-size", "-3", "argument --batch-size: must be >= 1, got -3"),
        ("--batch-size", "two", "argument --batch-size: expected an integer, got 'two'"),
        ("--threads", "0", "argument --threads: must be >= 1, got 0"),
        ("--workers", "0", "argument --workers: must be >= 1, got 0"),
        ("--shard-size", "0", "argument --shard-size: must be >= 1, got 0"),
    ],
)
def test_counts_below_one_are_usage_errors(tmp_path, capsys, option, value, needle):
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=10))
    out = tmp_path / "x.h5"
    code, _, err = run_cli(["run", cfg, "--out", str(out), "--quiet", option, value], capsys)
    assert code == 2 and needle in err and not out.exists()


@pytest.mark.parametrize(
    "args,needle",
    [
        (["demo", "--networks", "1"], "argument --networks: must be >= 2, got 1"),
        (["demo", "--networks", "100", "--threads", "0"], "argument --threads: must be >= 1"),
        (["resume", "x.h5", "--batch-size", "0"], "argument --batch-size: must be >= 1"),
    ],
)
def test_demo_and_resume_counts_are_checked(tmp_path, capsys, args, needle):
    code, _, err = run_cli(
        args + ["--quiet"] if args[0] == "resume" else args + ["--out", str(tmp_path / "demo")],
        capsys,
    )
    assert code == 2 and needle in err and not (tmp_path / "demo").exists()


def test_output_must_be_a_regular_file(tmp_path, capsys):
    """--out /dev/null (or a directory) is refused with a message; /dev/null is untouched."""
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=10))
    for out in (os.devnull, str(tmp_path)):
        code, _, err = run_cli(["run", cfg, "--out", out, "--quiet", "--overwrite"], capsys)
        assert code == 2 and f"output {out} exists and is not a regular file" in err
        assert "Traceback" not in err
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
    code, _, err = run_cli(["run", cfg, "--out", "", "--quiet"], capsys)
    assert code == 2 and "the output path is empty" in err


def test_missing_config_and_missing_output(tmp_path, capsys):
    code, _, err = run_cli(["run", str(tmp_path / "nope.toml"), "--quiet"], capsys)
    assert code == 2 and "config file not found" in err
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=10))
    code, _, err = run_cli(["run", cfg, "--quiet"], capsys)
    assert code == 2 and "no output file" in err


def test_examples_parse():
    names = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".toml"))
    assert len(names) >= 3
    for name in names:
        path = os.path.join(EXAMPLES, name)
        with open(path) as fh:
            is_sweep = "[sweep]" in fh.read()
        if is_sweep:  # a sweep: nnft run refuses it, every point parses (tests/test_sweep.py)
            with pytest.raises(ConfigError, match="nnft sweep"):
                load_config(path)
            assert all(p.config.n_networks >= 2 for p in load_sweep(path).points)
            continue
        cfg = load_config(path)
        assert cfg.n_networks >= 2 and cfg.out.endswith(".h5")


def test_config_save_mapping_and_none():
    base = SMALL.format(init="gaussian", n=10)
    assert parse_config(base + '\n[store]\nsave = {"3" = 2}\n').save == {3: 2}
    assert parse_config(base + '\n[store]\nsave = "none"\n').save is None
    with pytest.raises(ConfigError, match="store.save"):
        parse_config(base + '\n[store]\nsave = {"last" = 2}\n')


def test_info_and_resume(tmp_path, capsys):
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=300))
    out = str(tmp_path / "run.h5")
    assert run_cli(["run", cfg, "--out", out, "--quiet"], capsys)[0] == 0
    code, text, _ = run_cli(["info", out, "--json"], capsys)
    info = json.loads(text)
    assert code == 0 and info["committed"] == 300 and info["config"]["seed"] == 3
    code, text, _ = run_cli(["info", out], capsys)  # for a person: one topic per line
    assert code == 0 and text.startswith(f"{out}: 300 of 300 networks committed, complete")
    assert "widths = [4, 8, 8, 8]" in text and "seed 3" in text and "layer_3 300 x 4 x 2" in text
    code, text, _ = run_cli(["resume", out], capsys)
    assert code == 0 and "300 networks committed" in text


def test_report_on_corrupt_file_is_a_clean_error(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(os.urandom(4096))
    code, _, err = run_cli(["report", str(bad), "--out", str(tmp_path / "rep")], capsys)
    assert code == 1 and "not an HDF5 file" in err  # the run (report) failed: exit 1
    code, _, err = run_cli(["info", str(tmp_path / "missing.h5")], capsys)  # a wrong path
    assert code == 2 and "no such store file" in err


def _png_has_data(path):
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return float(np.std(img[..., :3])) > 0.01


def test_report_writes_plots_and_table(tmp_path, capsys):
    paths = []
    for init in ("gaussian", "orthogonal"):
        cfg = write_config(tmp_path, SMALL.format(init=init, n=400), f"{init}.toml")
        out = str(tmp_path / f"{init}.h5")
        assert run_cli(["run", cfg, "--out", out, "--quiet"], capsys)[0] == 0
        paths.append(out)
    rep = tmp_path / "report"
    code, text, err = run_cli(["report", *paths, "--out", str(rep)], capsys)
    assert code == 0, err
    for name in ("two_point.png", "vertex.png"):
        assert _png_has_data(rep / name)
    summary = (rep / "summary.md").read_text()
    assert "relu gaussian" in summary and "relu orthogonal" in summary
    assert summary.count("\n| 3 |") == 2  # one row for layer 3 per ensemble


def test_demo_runs_and_writes_stores_and_report(tmp_path, capsys):
    out = tmp_path / "demo"
    code, text, err = run_cli(["demo", "--networks", "2000", "--out", str(out)], capsys)
    assert code == 0, err
    for name in (
        "relu_gaussian.h5",
        "relu_orthogonal.h5",
        "tanh_gaussian.h5",
        "tanh_orthogonal.h5",
        "two_point.png",
        "vertex.png",
        "summary.md",
    ):
        assert (out / name).stat().st_size > 0
    assert "networks" in err  # progress line on stderr when not quiet
    with h5py.File(out / "tanh_orthogonal.h5", "r") as f:
        assert int(f.attrs["committed"]) == 2000


def test_console_script_entry_point(tmp_path):
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=50))
    out = str(tmp_path / "cli.h5")
    # No timeout: a slow machine only makes it take longer (a hang is CI's overall limit).
    done = subprocess.run(
        [sys.executable, "-m", "nnft_fast.cli", "run", cfg, "--out", out, "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert nf.open(out).n_networks == 50
    done = subprocess.run(
        [sys.executable, "-m", "nnft_fast.cli", "run", cfg, "--out", out],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "exists" in done.stderr


# ------------------------------------------------------------------ CLI conventions


def test_version_and_python_dash_m(capsys):
    code, text, _ = run_cli(["--version"], capsys)
    assert code == 0 and text.strip() == f"nnft_fast {nf.__version__}"
    done = subprocess.run(
        [sys.executable, "-m", "nnft_fast", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout.strip() == f"nnft_fast {nf.__version__}"
    done = subprocess.run([sys.executable, "-m", "nnft_fast"], capture_output=True, text=True)
    assert done.returncode == 2 and "usage: nnft" in done.stderr


def test_every_argument_has_help():
    import argparse

    from nnft_fast.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name, command in sub.choices.items():
        assert helps.get(name), f"nnft {name} has no help"
        for action in command._actions:
            assert action.help, f"nnft {name} {action.option_strings or action.dest}: no help"


def test_exit_codes_usage_2_runtime_1_interrupt_130(tmp_path, capsys, monkeypatch):
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=50))
    out = str(tmp_path / "run.h5")
    # usage: an unknown flag, an impossible config value (named by its TOML key)
    assert run_cli(["run", cfg, "--bogus"], capsys)[0] == 2
    bad = write_config(
        tmp_path, SMALL.format(init="gaussian", n=50) + 'method = "fast"\n', "m.toml"
    )
    code, _, err = run_cli(["run", bad, "--out", out], capsys)
    assert code == 2 and "'run.method': method must be one of" in err
    # runtime: a store that is not one (the command was right, the file is not)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"\0" * 4096)
    code, _, err = run_cli(["resume", str(junk)], capsys)
    assert code == 1 and "not an HDF5 file" in err
    # runtime: no GPU for --backend cuda
    import nnft_fast.backends as backends

    monkeypatch.setattr(backends, "cuda_available", lambda: False)
    code, _, err = run_cli(["run", cfg, "--out", out, "--backend", "cuda", "--quiet"], capsys)
    assert code == 1 and "cuda" in err.lower()
    assert not os.path.exists(out)
    # interrupted: exit 130, and the message says how to go on
    import nnft_fast.sampling

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(nnft_fast.sampling, "sample", interrupted)
    code, _, err = run_cli(["run", cfg, "--out", out], capsys)
    assert code == 130 and "nnft resume" in err


def test_messages_use_cli_words(tmp_path, capsys):
    cfg = write_config(tmp_path, SMALL.format(init="gaussian", n=50))
    out = str(tmp_path / "run.h5")
    assert run_cli(["run", cfg, "--out", out, "--quiet"], capsys)[0] == 0
    code, _, err = run_cli(["run", cfg, "--out", out, "--quiet"], capsys)
    assert code == 2 and "--overwrite" in err and "nnft resume" in err
    assert "nf." not in err and "overwrite=True" not in err


def test_demo_refuses_to_overwrite_without_flag(tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--networks", "20", "--out", str(out), "--quiet"]
    assert run_cli(args, capsys)[0] == 0
    stamp = os.stat(out / "relu_gaussian.h5").st_mtime_ns
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--overwrite" in err and "relu_gaussian.h5" in err
    assert os.stat(out / "relu_gaussian.h5").st_mtime_ns == stamp  # untouched
    assert run_cli(args + ["--overwrite"], capsys)[0] == 0
    assert os.stat(out / "relu_gaussian.h5").st_mtime_ns != stamp


def test_sweep_two_by_two_end_to_end(tmp_path, capsys):
    """nnft sweep runs the 4 points into one directory (each the store of its own config),
    a second call skips them, nnft run refuses a sweep config, nnft report combines them."""
    cfg = write_config(
        tmp_path,
        SMALL.format(init="gaussian", n=60)
        + '\n[sweep]\n"network.cw" = [1.5, 2.0]\n"network.init" = ["gaussian", "orthogonal"]\n',
        "sweep.toml",
    )
    out = tmp_path / "sweep"
    code, text, err = run_cli(["sweep", cfg, "--out", str(out)], capsys)
    assert code == 0, err
    assert "point 4/4" in text and "4 points" in text
    for index, (cw, init) in enumerate(
        [(1.5, "gaussian"), (1.5, "orthogonal"), (2.0, "gaussian"), (2.0, "orthogonal")]
    ):
        single = parse_config(SMALL.format(init=init, n=60).replace("cw = 2.0", f"cw = {cw}"))
        stored = nf.open(out / f"point_{index:03d}.h5")
        assert stored.network == single.network
        expected = nf.sample(single.network, single.inputs, 60, seed=3)
        np.testing.assert_array_equal(stored.two_point(3).value, expected.two_point(3).value)
    stamp = os.stat(out / "point_000.h5").st_mtime_ns
    code, text, _ = run_cli(["sweep", cfg, "--out", str(out)], capsys)
    assert code == 0 and os.stat(out / "point_000.h5").st_mtime_ns == stamp
    code, _, err = run_cli(["run", cfg, "--out", str(tmp_path / "one.h5")], capsys)
    assert code == 2 and "nnft sweep" in err
    code, text, err = run_cli(["report", str(out)], capsys)
    assert code == 0, err
    assert (out / "summary.md").stat().st_size > 0 and "wrote" in text
    code, _, err = run_cli(["report", cfg], capsys)  # a file without --out
    assert code == 2 and "--out" in err
