"""Nothing outside ``src/`` uses a private name of racam (issue 23): the tests, benchmarks and
scripts, and the research scripts in ``experiments/`` (which also keep out of the CLI's
internals, ``racam.cli``), use the library's public names only; no test runs or imports a
research script.

A name is private when one of its parts starts with ``_`` (``__dunder__`` names excepted). The
scan reads each file's syntax tree: ``import racam._x``, ``from racam.x import _y``, an
attribute ``_y`` read from (or set on) a name bound by a racam import, and ``setattr(mod, "_y",
...)`` (``monkeypatch.setattr``) on such a name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("tests", "benchmarks", "scripts", "experiments")


def _private(part: str) -> bool:
    return part.startswith("_") and not (part.startswith("__") and part.endswith("__"))


def _racam_imports(tree: ast.AST) -> tuple[set[str], list[tuple[int, str]]]:
    """Names bound by racam imports, and ``(line, dotted name)`` of every racam import."""
    bound: set[str] = set()
    imported: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == "racam":
                    imported.append((node.lineno, a.name))
                    bound.add(a.asname or "racam")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "racam":
            for a in node.names:
                imported.append((node.lineno, f"{node.module}.{a.name}"))
                bound.add(a.asname or a.name)
    return bound, imported


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def private_uses(source: str) -> list[str]:
    """``line: name`` of each private racam name ``source`` uses."""
    tree = ast.parse(source)
    bound, imported = _racam_imports(tree)
    found = [f"{line}: {name}" for line, name in imported
             if any(_private(p) for p in name.split("."))]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr)
                and _root_name(node.value) in bound):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name)
              and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
              == "setattr" and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _private(node.args[1].value) and _root_name(node.args[0]) in bound):
            found.append(f"{node.lineno}: setattr({ast.unparse(node.args[0])}, "
                         f"{node.args[1].value!r})")
    return sorted(set(found))


def _files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", FOLDERS)
def test_nothing_outside_src_uses_a_private_racam_name(folder: str) -> None:
    found = {str(p.relative_to(ROOT)): uses for p in _files(folder)
             if (uses := private_uses(p.read_text(encoding="utf-8")))}
    assert not found, f"private racam names used outside src/: {found}"


def test_experiments_keep_out_of_the_cli() -> None:
    found = {str(p.relative_to(ROOT)): names for p in _files("experiments")
             if (names := [n for _, n in _racam_imports(ast.parse(p.read_text()))[1]
                           if n.startswith("racam.cli")])}
    assert not found, f"research scripts importing racam.cli: {found}"


def test_no_test_imports_or_runs_a_research_script() -> None:
    found = []
    for p in _files("tests"):
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] == "experiments" for n in names):
                found.append(f"{p.name}:{node.lineno}")
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and node.value in ("experiments", "experiments/")
                    and p.name != Path(__file__).name):
                found.append(f"{p.name}:{node.lineno}")  # e.g. ROOT / "experiments" / "x.py"
    assert not found, f"tests that import or run experiments/: {found}"


def test_the_scan_finds_each_kind_of_private_use() -> None:
    source = ("import racam._version\n"
              "from racam.models.registry import _fold, build\n"
              "from racam.classifier import train as tm\n"
              "import os\n"
              "tm._step(1)\n"
              "monkeypatch.setattr(tm, '_epoch', None)\n"
              "os._exit\n"
              "build.__name__\n")
    assert private_uses(source) == ["1: racam._version", "2: racam.models.registry._fold",
                                    "5: tm._step", "6: setattr(tm, '_epoch')"]
