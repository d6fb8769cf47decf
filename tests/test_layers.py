"""Imports point one way: tagger (the shared core) <- train <- labelstudio <- eval. A module never
imports from a layer above its own, and no modules import each other in a circle (imports inside
functions count too), so a reader can tell which stands on which."""

import ast

import pytest

from conftest import REPO

LAYERS = ("tagger", "train", "labelstudio", "eval")  # bottom to top
# `python -m train.labelstudio`, the earlier name of `python -m labelstudio`, kept for scripts.
ALIASES = {"train/labelstudio.py": {"labelstudio"}}


def imported_modules(path, modules=frozenset()) -> set[str]:
    """What the file imports; `from package import module` counts as `package.module` where that
    is one of `modules`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            inner = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            names.update(inner or {node.module})
    return names


def upward_imports(package: str) -> list[str]:
    above = set(LAYERS[LAYERS.index(package) + 1:])
    found = []
    for path in (REPO / package).rglob("*.py"):
        allowed = ALIASES.get(str(path.relative_to(REPO)), set())
        found += [f"{path.relative_to(REPO)} imports {name}"
                  for name in {name.split(".")[0] for name in imported_modules(path)} & above - allowed]
    return sorted(found)


def module_graph(root) -> dict[str, set[str]]:
    """Module name -> the repository's modules it imports."""
    paths = {".".join(path.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): path
             for package in LAYERS for path in (root / package).rglob("*.py")}
    return {name: {other for other in imported_modules(path, frozenset(paths)) if other in paths and other != name}
            for name, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, found = {}, {}, [], []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@pytest.mark.parametrize("package", LAYERS)
def test_no_module_imports_from_a_layer_above_its_own(package):
    assert upward_imports(package) == []


def test_no_modules_import_each_other_in_a_circle():
    assert circles(module_graph(REPO)) == []


def test_the_alias_only_starts_the_moved_command():
    alias = REPO / "train" / "labelstudio.py"
    assert imported_modules(alias) == {"labelstudio.__main__", "tagger.cli"}


def test_the_checks_see_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    import test_layers
    (tmp_path / "tagger").mkdir()
    (tmp_path / "tagger" / "bad.py").write_text("from train.run import run\nimport eval.report\n")
    (tmp_path / "tagger" / "one.py").write_text("def f():\n    from tagger.two import g\n")
    (tmp_path / "tagger" / "two.py").write_text("from tagger import one\n")
    monkeypatch.setattr(test_layers, "REPO", tmp_path)
    assert upward_imports("tagger") == ["tagger/bad.py imports eval", "tagger/bad.py imports train"]
    assert circles(module_graph(tmp_path)) == [["tagger.one", "tagger.two"]]
