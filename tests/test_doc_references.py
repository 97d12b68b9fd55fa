"""Every ``racam.x.y`` name and repository path the docs, configs and docstrings mention exists.

Names are resolved by importing the longest importable module prefix and reading the rest as
attributes; paths (``src/racam/...``, ``experiments/...``, ``docs/...``, ...) are looked up in the
repository. The two worked examples (files a reader creates) are the only exceptions.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: files a worked example asks the reader to create
WORKED_EXAMPLES = {"racam.cam.eigencam", "src/racam/cam/eigencam.py",
                   "racam.data.dagm", "src/racam/data/dagm.py"}
NAME = re.compile(r"\bracam(?:\.[A-Za-z_]\w*)+")
_DIRS = "src/racam|scripts|experiments|benchmarks|tests|docs|results"
PATH = re.compile(rf"(?<![\w/.-])((?:{_DIRS})/[\w./-]*\w)")


def _files() -> list[Path]:
    found = [*ROOT.glob("docs/*.md"), ROOT / "README.md", ROOT / "experiments/README.md",
             *ROOT.glob("src/racam/configs/*.yaml"),
             *ROOT.glob("src/racam/**/*.py"), *ROOT.glob("scripts/**/*.py"),
             *ROOT.glob("experiments/**/*.py"), *ROOT.glob("benchmarks/*.py")]
    return sorted(p for p in found if p.is_file())


def _resolves(name: str) -> bool:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attr in parts[i:]:
            if dataclasses.is_dataclass(obj) and attr in {f.name for f in dataclasses.fields(obj)}:
                return True  # a field without a default is no class attribute
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def _references(text: str) -> tuple[set[str], set[str]]:
    names = {m.rstrip(".") for m in NAME.findall(text)}
    names = {n for n in names if not n.endswith((".py", ".md", ".yaml", ".json"))}
    paths = {p.rstrip(".") for p in PATH.findall(text) if not set("<*{") & set(p)}
    return names - WORKED_EXAMPLES, paths - WORKED_EXAMPLES


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_name_and_path_mentioned_exists(path: Path) -> None:
    names, paths = _references(path.read_text(encoding="utf-8"))
    missing = sorted(n for n in names if not _resolves(n))
    missing += sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, f"{path.relative_to(ROOT)} mentions what does not exist: {missing}"


def test_the_check_finds_a_stale_name_and_path() -> None:
    names, paths = _references("see `racam.pipeline.folds.fold_list` and scripts/nosuch.py.")
    assert [n for n in names if not _resolves(n)] == ["racam.pipeline.folds.fold_list"]
    assert paths == {"scripts/nosuch.py"} and not (ROOT / "scripts/nosuch.py").exists()
