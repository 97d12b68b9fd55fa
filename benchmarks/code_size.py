"""Code-size check for the house rules: modules over ~400 lines, functions over ~80 lines.

A guideline, not a test: prints the offenders, longest first, and always exits 0.

    python benchmarks/code_size.py [ROOT] [--module-lines N] [--function-lines N]

A function's length counts from its first decorator to its last line (nested functions
are measured on their own as well as inside their parent).
"""

from __future__ import annotations

import argparse
import ast
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / "src" / "racam"


@dataclass(frozen=True)
class Sized:
    """One module or function with its length in lines."""

    lines: int
    where: str


def module_sizes(root: Path) -> list[Sized]:
    """Every ``.py`` file under ``root`` with its line count."""
    out = []
    for path in sorted(root.rglob("*.py")):
        n = len(path.read_text(encoding="utf-8").splitlines())
        out.append(Sized(n, str(path.relative_to(root.parent))))
    return out


def function_sizes(root: Path) -> list[Sized]:
    """Every function and method under ``root`` with its length, decorators included."""
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, qualname in _functions(tree, ""):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            end = node.end_lineno or node.lineno
            out.append(Sized(end - first + 1, f"{rel}:{node.lineno} {qualname}"))
    return out


def _functions(node: ast.AST, prefix: str):
    """(function node, qualified name) pairs below ``node``, depth first."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = f"{prefix}{child.name}"
            yield child, name
            yield from _functions(child, f"{name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:
            yield from _functions(child, prefix)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=DEFAULT_ROOT)
    parser.add_argument("--module-lines", type=int, default=400)
    parser.add_argument("--function-lines", type=int, default=80)
    args = parser.parse_args(argv)
    root = args.root.resolve()
    long_modules = [s for s in module_sizes(root) if s.lines > args.module_lines]
    long_functions = [s for s in function_sizes(root) if s.lines > args.function_lines]
    print(f"modules over {args.module_lines} lines: {len(long_modules)}")
    for s in sorted(long_modules, key=lambda s: (-s.lines, s.where)):
        print(f"  {s.lines:5d}  {s.where}")
    print(f"functions over {args.function_lines} lines: {len(long_functions)}")
    for s in sorted(long_functions, key=lambda s: (-s.lines, s.where)):
        print(f"  {s.lines:5d}  {s.where}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
