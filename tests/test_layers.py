"""Imports point one way: tagger (the shared core) <- train <- eval. A module never imports
from a layer above its own, so a reader can tell which layer stands on which."""

import ast

import pytest

from conftest import REPO

LAYERS = ("tagger", "train", "eval")  # bottom to top


def imported_packages(path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {name.split(".")[0] for name in names}


def upward_imports(package: str) -> list[str]:
    above = set(LAYERS[LAYERS.index(package) + 1:])
    return sorted(f"{path.relative_to(REPO)} imports {name}"
                  for path in (REPO / package).rglob("*.py")
                  for name in imported_packages(path) & above)


@pytest.mark.parametrize("package", LAYERS)
def test_no_module_imports_from_a_layer_above_its_own(package):
    assert upward_imports(package) == []


def test_the_check_sees_an_upward_import(tmp_path, monkeypatch):
    import test_layers
    (tmp_path / "tagger").mkdir()
    (tmp_path / "tagger" / "bad.py").write_text("from train.run import run\nimport eval.report\n")
    monkeypatch.setattr(test_layers, "REPO", tmp_path)
    assert upward_imports("tagger") == ["tagger/bad.py imports eval", "tagger/bad.py imports train"]
