"""Checks of config values: each field's type from its annotation, plus the field's own rules.

A config dataclass declares a field with :func:`option`, e.g.
``epochs: int = option(20, at_least(1))``. :func:`checked` then converts every value to its
annotated type (``"1e-3"`` -> ``0.001`` for a ``float``; ``"abc"`` for an ``int`` is an error),
runs the rules on it (on each item of a list or tuple), and raises :class:`ConfigError` naming
the dotted key, e.g. ``classifier.lr: must be > 0, got -1``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from racam.errors import ConfigError

#: A rule: the problem with a (type-converted) value, or ``None`` when it is fine.
Rule = Callable[[Any], "str | None"]


def option(default: Any, *rules: Rule) -> Any:
    """A dataclass field with ``rules``; a list default is copied for each instance."""
    meta = {"rules": rules}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def at_least(low: float) -> Rule:
    """``value >= low``."""
    return lambda v: None if v >= low else f"must be >= {low}, got {v!r}"


def above(low: float) -> Rule:
    """``value > low``."""
    return lambda v: None if v > low else f"must be > {low}, got {v!r}"


def within(low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> Rule:
    """``low <= value <= high``; ``open_low`` / ``open_high`` exclude the bound."""
    text = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"

    def rule(v: Any) -> str | None:
        ok = (v > low if open_low else v >= low) and (v < high if open_high else v <= high)
        return None if ok else f"must lie in {text}, got {v!r}"
    return rule


def one_of(names: Sequence[Any] | Callable[[], Sequence[Any]], what: str) -> Rule:
    """``value in names``; ``names`` may be a function (a registry read when checking)."""
    def rule(v: Any) -> str | None:
        allowed = list(names() if callable(names) else names)
        if v in allowed:
            return None
        return f"unknown {what} {v!r}; choose one of {', '.join(map(str, allowed))}"
    return rule


def checked(obj: Any, where: str = "") -> Any:
    """``obj`` (a config dataclass) with every field converted and checked, recursively.

    Returns ``obj`` itself when no value changed, else a copy (``dataclasses.replace``).
    A dataclass with a ``cross_check(where)`` method has it called last, for rules between
    its keys.
    ``where`` is the dotted prefix of the keys in error messages (``""`` at the top).
    """
    hints = typing.get_type_hints(type(obj))
    changes: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        key = f"{where}.{f.name}" if where else f.name
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            new = checked(value, key)
        else:
            new = convert(value, hints[f.name], key)
            if new is not None:
                _apply(f.metadata.get("rules", ()), new, key)
        if new is not value:
            changes[f.name] = new
    out = dataclasses.replace(obj, **changes) if changes else obj
    if hasattr(out, "cross_check"):  # rules between the keys of one section
        out.cross_check(where)
    return out


def _apply(rules: Sequence[Rule], value: Any, key: str) -> None:
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = [(f".{k}", v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f"[{i}]", v) for i, v in enumerate(value)]
    else:
        items = [("", value)]
    for rule in rules:
        for i, item in items:
            problem = rule(item)
            if problem:
                raise ConfigError(f"{key}{i}: {problem}")


def convert(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the annotated type ``hint`` (see the module docstring), or ConfigError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(value, inner, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {convert(k, args[0], key): convert(v, args[1], f"{key}.{k}")
                for k, v in value.items()}
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not (isinstance(value, (list, tuple)) and len(value) == len(args)):
            shape = "[width, height]" if len(args) == 2 else f"a list of {len(args)} values"
            raise ConfigError(f"{key}: expected {shape}, got {value!r}")
        return tuple(convert(v, a, f"{key}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    scalar = _SCALARS.get(hint)
    return value if scalar is None else scalar(value, key)


def _to_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ConfigError(f"{key}: expected true or false, got {value!r}")


def _to_int(value: Any, key: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    return int(number)


def _to_float(value: Any, key: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value  # an int stays an int (50, not 50.0, in manifests and stage keys)
    number = _number(value)
    if number is None:
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    return number


def _number(value: Any) -> float | None:
    """A float, or a string holding one (``--set`` and YAML give ``1e-3`` as a string)."""
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _to_str(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError(f"{key}: expected a string, got {value!r}")


_SCALARS: dict[Any, Callable[[Any, str], Any]] = {
    bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}
