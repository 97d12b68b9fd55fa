"""Split files: the authors' ``split_*.pyb`` pickles, read with a restricted unpickler.

A pickle can run arbitrary code when loaded, so :func:`load_split_file` refuses every pickle
*global* (classes, functions, ``os.system`` ...) and then checks that the loaded object is made
of nothing but lists, tuples, strings, ints and bools (sets, dicts, floats, bytes, ``None``
are refused too). Anything else raises :class:`~racam.errors.DataError` naming the file.

KolektorSDD split format: ``(train_folds, test_folds)``, each a list of folds, each fold a list
of ``(item_folder, is_fully_labeled)`` pairs, e.g. ``('kos01', True)``.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from racam.errors import DataError

ALLOWED_TYPES = (list, tuple, str, int, bool)
MAX_BYTES = 16 * 1024 * 1024


class _NoGlobalsUnpickler(pickle.Unpickler):
    """An unpickler that resolves no global at all (so no class or callable can be built)."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def _check_plain(obj: Any, path: Path) -> None:
    """Raise DataError unless ``obj`` only holds lists, tuples, strs, ints and bools."""
    stack = [obj]
    while stack:
        x = stack.pop()
        if type(x) not in ALLOWED_TYPES:
            raise DataError(f"{path}: split file holds a {type(x).__name__}; only lists, tuples, "
                            "strings, ints and bools are allowed")
        if isinstance(x, (list, tuple)):
            stack.extend(x)


def load_split_file(path: str | Path) -> Any:
    """Load a split pickle safely and return its plain content (lists/tuples/str/int/bool)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: split file not found")
    data = p.read_bytes()
    if len(data) > MAX_BYTES:
        raise DataError(f"{p}: split file is larger than {MAX_BYTES} bytes")
    try:
        obj = _NoGlobalsUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as exc:
        raise DataError(f"{p}: not a plain-data split pickle ({exc}); only lists, tuples, "
                        "strings, ints and bools are allowed") from None
    except Exception as exc:  # truncated or garbage bytes raise many different types
        raise DataError(f"{p}: cannot read split file ({type(exc).__name__}: {exc})") from None
    _check_plain(obj, p)
    return obj


def _fold_units(fold: Any, path: Path, where: str) -> list[str]:
    if not isinstance(fold, (list, tuple)):
        raise DataError(f"{path}: {where} is a {type(fold).__name__}, expected a list of items")
    units = []
    for entry in fold:
        name = entry[0] if isinstance(entry, (list, tuple)) and entry else entry
        if not isinstance(name, str):
            raise DataError(f"{path}: {where} holds {entry!r}; expected (item_folder, bool) "
                            "pairs or folder names")
        units.append(name)
    return units


def ksdd_folds(path: str | Path) -> tuple[list[list[str]], list[list[str]]]:
    """Read a KolektorSDD split file as ``(train_units_per_fold, test_units_per_fold)``."""
    p = Path(path)
    obj = load_split_file(p)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2):
        raise DataError(f"{p}: expected a pickle of (train_folds, test_folds)")
    train, test = obj
    if not isinstance(train, (list, tuple)) or not isinstance(test, (list, tuple)) \
            or len(train) != len(test) or not train:
        raise DataError(f"{p}: train and test must be lists holding the same number of folds")
    train_units = [_fold_units(f, p, f"train fold {k}") for k, f in enumerate(train)]
    test_units = [_fold_units(f, p, f"test fold {k}") for k, f in enumerate(test)]
    for k, (tr, te) in enumerate(zip(train_units, test_units)):
        both = sorted(set(tr) & set(te))
        if both:
            raise DataError(f"{p}: fold {k} has items in both train and test: {', '.join(both)}")
    return train_units, test_units
