"""The package's layering (issue 14): every module imports, the module import graph has no
cycle, and the plain store and the sharded runs do not import each other (both build on
the run layer ``nnft_fast.run`` and the file format ``nnft_fast.h5format``).

The graph is read from the source files with ``ast``: every ``import`` and ``from ...
import`` anywhere in a module (function-level imports included), relative imports
resolved against the module's package; an import of ``nnft_fast.kernels.*`` points at
the shipped ``kernels/`` directory. ``from package import name`` is an edge to the
submodule ``package.name`` where that is a module, else to the package itself.
"""

import ast
import importlib
import pathlib

import pytest

import nnft_fast
import nnft_fast.kernels

# The sources of the package as imported (the checkout, or an installed wheel, where
# kernels/ ships inside nnft_fast/).
ROOTS = {
    "nnft_fast": pathlib.Path(nnft_fast.__file__).parent,
    "nnft_fast.kernels": pathlib.Path(nnft_fast.kernels.__file__).parent,
}
# The only name modules may read from the package's facade (``nnft_fast/__init__.py``, which
# imports the public API from every module): the version, read at call time.
FACADE_NAMES = {"__version__"}


def _modules():
    """{module name: (source path, is a package)} of nnft_fast and its kernels."""
    found = {}
    for prefix, root in ROOTS.items():
        for path in sorted(root.rglob("*.py")):
            if prefix == "nnft_fast" and ROOTS["nnft_fast.kernels"] in path.parents:
                continue  # an installed wheel: kernels/ is read under its own prefix
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            found[".".join([prefix] + parts)] = (path, is_package)
    return found


MODULES = _modules()


def _resolve(module, is_package, node):
    """The absolute module name a ``from`` import starts from."""
    if node.level == 0:
        return node.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _graph():
    """({module: set of imported package modules}, [(module, facade names read)])."""
    edges, facade_reads = {}, []
    for module, (path, is_package) in MODULES.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, is_package, node)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    if submodule in MODULES:
                        targets.add(submodule)
                    elif base == "nnft_fast" and module != "nnft_fast":
                        facade_reads.append((module, alias.name))
                    else:
                        targets.add(base)
        edges[module] = {_known(t) for t in targets if _known(t)} - {module}
    return edges, facade_reads


def _known(name):
    """``name`` or its nearest enclosing module of the package (None outside it)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _cycle(edges):
    """One import cycle as a list of modules, or None (depth-first search)."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(edges):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_the_graph_sees_the_layers():
    edges, _ = _graph()
    assert {
        "nnft_fast.run",
        "nnft_fast.h5format",
        "nnft_fast.store",
        "nnft_fast.distributed",
        "nnft_fast.kernels.cpu.codes",
    } <= set(edges)
    assert "nnft_fast.run" in edges["nnft_fast.store"]
    assert "nnft_fast.h5format" in edges["nnft_fast.distributed"]
    assert "nnft_fast.kernels.cpu.codes" in edges["nnft_fast.kernels.cpu.forward"]
    assert "nnft_fast.run" in edges["nnft_fast.h5format"]  # relative import resolved


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    if module.startswith("nnft_fast.kernels.cuda") or module in (
        "nnft_fast.gpu_engine",
        "nnft_fast.gpu_field_engine",
    ):
        pytest.importorskip("numba_cuda")  # the 'cuda' extra
    importlib.import_module(module)


def test_no_import_cycle():
    edges, facade_reads = _graph()
    assert _cycle(edges) is None, f"import cycle: {' -> '.join(_cycle(edges))}"
    assert {name for _, name in facade_reads} <= FACADE_NAMES, facade_reads


def test_store_and_distributed_do_not_import_each_other():
    edges, _ = _graph()
    assert "nnft_fast.distributed" not in edges["nnft_fast.store"]
    assert "nnft_fast.store" not in edges["nnft_fast.distributed"]
    assert "nnft_fast.sampling" not in edges["nnft_fast.run"]


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
