"""Services talk through public methods: no module reaches into another object's `_private`
attribute, and no class uses a `self._name` it does not define (or inherit from a class of its
own module), which is how a mixin borrows its host's private methods."""
from __future__ import annotations

import ast
from pathlib import Path

import tether

SOURCE = Path(tether.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _own(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id in ("self", "cls")


def _defined(cls: ast.ClassDef, classes: dict[str, ast.ClassDef]) -> set[str]:
    """What a class defines: methods, class attributes, `self.x = ...` anywhere in it, and the
    same of its bases that live in its module."""
    names: set[str] = set()
    for item in cls.body:
        if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(item.name)
        elif isinstance(item, ast.Assign):
            names |= {t.id for t in item.targets if isinstance(t, ast.Name)}
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            names.add(item.target.id)
    names |= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute)
              and isinstance(n.ctx, ast.Store) and _own(n.value)}
    for base in cls.bases:
        if isinstance(base, ast.Name) and base.id in classes and base.id != cls.name:
            names |= _defined(classes[base.id], classes)
    return names


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = [f"{node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
             if isinstance(node, ast.Attribute) and _private(node.attr) and not _own(node.value)]
    classes = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    for cls in classes.values():
        defined = _defined(cls, classes)
        found += [f"{n.lineno}: {cls.name} uses self.{n.attr}, defined elsewhere"
                  for n in ast.walk(cls) if isinstance(n, ast.Attribute) and _own(n.value)
                  and _private(n.attr) and n.attr not in defined]
    return found


def test_no_module_uses_another_objects_private_names() -> None:
    report = {str(path.relative_to(SOURCE)): found for path in sorted(SOURCE.rglob("*.py"))
              if (found := violations(path))}
    assert report == {}


def test_the_scan_finds_both_kinds(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("class Mixin:\n"
                      "    def join(self):\n"
                      "        self._save()\n"
                      "class Other:\n"
                      "    def __init__(self, service):\n"
                      "        self._service = service\n"
                      "    def go(self):\n"
                      "        self._service._run()\n")
    assert violations(sample) == ["8: self._service._run", "3: Mixin uses self._save, defined elsewhere"]
