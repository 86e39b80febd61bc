"""examples/phi4_mlp.py runs on a small ensemble and writes its table and figure."""

import pytest

from ._examples import load_example


def test_phi4_mlp_example_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    example = load_example("phi4_mlp")
    example.main(str(tmp_path), 2_000)
    out = capsys.readouterr().out
    assert "| n | entry | theory (n = ∞) | first order | pull |" in out
    rows = [line for line in out.splitlines() if line.startswith(("| 32 |", "| 256 |"))]
    assert len(rows) == 4 * len(example.WIDTHS)
    assert "empirical quadrature" in out
    assert (tmp_path / "phi4_mlp.png").stat().st_size > 10_000
