"""examples/free_scalar_3d.py runs on a small ensemble and writes its tables and figure."""

import pytest

from ._examples import load_example


def test_free_scalar_example_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    load_example("free_scalar_3d").main(str(tmp_path), 3_000)
    out = capsys.readouterr().out
    assert "finite-width excess N G4c(0, 0, r, r)" in out
    assert out.count("| -1 | gaussian |") == 2 and out.count("| 0 | constant |") == 2
    assert (tmp_path / "free_scalar_3d.png").stat().st_size > 10_000
