"""Reading a config file into plain values, and plain values into the config dataclasses.

:func:`config_values` reads a YAML file (or a built-in config by name): duplicate keys, invalid
YAML and unreadable files are :class:`ConfigError` naming the file; ``--set`` overrides are
merged in by dotted key. :func:`build_dataclass` turns the values into the (unchecked)
dataclasses of :mod:`racam.config`, refusing unknown keys; :func:`racam.config.load_config`
does both and checks every value.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from racam.errors import ConfigError

#: The built-in configs (``racam run ksdd-cpu`` reads ``configs/ksdd-cpu.yaml``).
BUILTIN_CONFIGS = Path(__file__).resolve().parent / "configs"


def config_values(path: str | os.PathLike[str],
                  overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], Path]:
    """The plain values of a YAML config with ``overrides`` merged in, and the file read;
    ``path`` may also name a built-in config (``ksdd-cpu``). The keys present are the ones the
    user set (:func:`racam.plan.apply.explicit_keys`)."""
    p = Path(path)
    if not p.exists():
        builtin = BUILTIN_CONFIGS / f"{path}.yaml"
        if builtin.exists():
            p = builtin
        else:
            names = sorted(x.stem for x in BUILTIN_CONFIGS.glob("*.yaml"))
            raise ConfigError(f"config {path}: no such file, and not a built-in config {names}")
    if p.is_dir():
        raise ConfigError(f"config {p}: is a folder, not a YAML file")
    from racam.yaml_load import DuplicateKeyError, load_yaml

    try:
        values = load_yaml(p.read_text()) or {}
    except DuplicateKeyError as exc:
        raise ConfigError(f"config {p}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {p}: not valid YAML: {' '.join(str(exc).split())}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise ConfigError(f"config {p}: cannot be read ({reason})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config {p}: expected a mapping of keys, got {type(values).__name__}")
    merge_overrides(values, overrides or {})
    return values, p


def merge_overrides(values: dict[str, Any], overrides: dict[str, Any]) -> None:
    """Set each dotted key of ``overrides`` (``--set``) in the nested ``values``, making the
    sections it names; :class:`ConfigError` when one of them is not a section."""
    for dotted, value in overrides.items():
        node = values
        *parents, leaf = dotted.split(".")
        for part in parents:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {dotted}: {part} is not a section")
        node[leaf] = value


def build_dataclass(cls: type, values: Any, where: str) -> Any:
    """``cls`` from a mapping, recursively; unknown keys are errors (values unchecked)."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(values).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{where or 'config'}: unknown key(s) {sorted(unknown)}; "
                          f"allowed: {sorted(names)}")
    kwargs = {key: build_dataclass(hints[key], {} if value is None else value,
                                   f"{where}.{key}" if where else key)
              if dataclasses.is_dataclass(hints[key]) else value
              for key, value in values.items()}
    return cls(**kwargs)
