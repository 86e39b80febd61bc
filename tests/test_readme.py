"""Every ```python block of README.md runs as written.

The blocks are executed in the order they appear, in one namespace (a block may use the
names an earlier block defined, as a reader working through the README would), in a
temporary working directory (the stores they write land there). Shell and TOML blocks
are not executed. A block that imports an optional extra that is not installed (dask)
is skipped together with its name bindings; the README keeps later blocks independent
of such blocks. CI copies README.md beside the tests.
"""

import importlib.util
import os
import re

import pytest

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
OPTIONAL = ("dask",)  # extras whose blocks are skipped where they are not installed


def python_blocks(text):
    """[(first line number, source)] of the ```python blocks of ``text``, in order."""
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in FENCE.finditer(text)]


def missing_extra(source):
    """The optional top-level module ``source`` imports and that is not installed, or None."""
    for name in OPTIONAL:
        if (
            re.search(rf"^\s*(from|import)\s+{name}\b", source, re.M)
            and importlib.util.find_spec(name) is None
        ):
            return name
    return None


def test_extracts_the_blocks():
    blocks = python_blocks(
        "text\n```python\na = 1\n```\n```toml\nb = 2\n```\n```python\nc = a\n```\n"
    )
    assert blocks == [(3, "a = 1\n"), (9, "c = a\n")]


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    with open(README, encoding="utf-8") as fh:
        blocks = python_blocks(fh.read())
    assert len(blocks) >= 5, "README.md lost its python examples"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__readme__"}
    skipped = []
    for line, source in blocks:
        extra = missing_extra(source)
        if extra is not None:
            skipped.append(f"README.md:{line} (needs {extra})")
            continue
        code = compile(source, f"README.md:{line}", "exec")
        try:
            exec(code, namespace)  # noqa: S102 -- the README's own examples
        except Exception as exc:
            raise AssertionError(
                f"the python block at README.md:{line} fails: {type(exc).__name__}: {exc}"
            ) from exc
    capsys.readouterr()
    if skipped:
        pytest.skip("blocks not run (extra not installed): " + ", ".join(skipped))
