"""A run's config with the plan's values for the keys the user left out.

**What counts as explicit.** A key is the user's when it is present in the config's plain
values: the YAML file merged with every ``--set`` (:func:`racam.config.config_values`), before
any default is filled in. Presence is what counts, not the value: ``samples_per_epoch: null``
in a YAML file (or ``--set segmentation.samples_per_epoch=null``) is kept as ``null``. The
built-in ``folder-example.yaml`` is read the same way, so it leaves the planned keys out (its
comments say so) and sets the recipe keys itself; a copy of it keeps working the same. A
dataclass default is never explicit: it is what a plan replaces. Explicit values always win.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, get_type_hints

from racam.config import RunConfig, check_config
from racam.plan.fingerprint import Fingerprint, from_folder
from racam.plan.rules import Plan, Setting, plan_for


@dataclass(frozen=True)
class PlannedRun:
    """A folder run's config after its plan (``config``), with what it came from."""

    config: RunConfig
    fingerprint: Fingerprint
    plan: Plan
    #: dotted config keys the user set (module docstring)
    explicit: frozenset[str]

    def choices(self) -> list[tuple[Setting, bool]]:
        """Each planned setting and whether the run took it (``False``: the user's value)."""
        return [(s, s.key not in self.explicit) for s in self.plan.settings()]


def explicit_keys(values: Mapping[str, Any]) -> frozenset[str]:
    """Dotted keys present in ``values`` (a config's plain values): ``section.key`` inside the
    config's sections, ``key`` at the top level (module docstring)."""
    sections = {name for name, hint in get_type_hints(RunConfig).items()
                if dataclasses.is_dataclass(hint)}
    keys: set[str] = set()
    for name, value in values.items():
        if name in sections and isinstance(value, Mapping):
            keys.update(f"{name}.{key}" for key in value)
        else:
            keys.add(name)
    return frozenset(keys)


def apply_plan(cfg: RunConfig, plan: Plan, explicit: Collection[str]) -> RunConfig:
    """``cfg`` with ``plan``'s value for every planned key not in ``explicit``, checked."""
    changes: dict[str, dict[str, Any]] = {}
    for setting in plan.settings():
        if setting.key not in explicit:
            section, key = setting.key.split(".")
            changes.setdefault(section, {})[key] = setting.value
    replaced = {name: dataclasses.replace(getattr(cfg, name), **values)
                for name, values in changes.items()}
    return check_config(dataclasses.replace(cfg, **replaced))


def planned_run(cfg: RunConfig, values: Mapping[str, Any]) -> PlannedRun | None:
    """The :class:`PlannedRun` of ``cfg`` (loaded from the plain ``values``) when it is a folder
    run with ``data.plan: auto``, else ``None``. Reads the image headers of ``data.root``."""
    if cfg.data.dataset != "folder" or cfg.data.plan != "auto":
        return None
    from racam.data.registry import resolve_root

    explicit = explicit_keys(values)
    fp = from_folder(resolve_root(cfg.data.dataset, cfg.data.root))
    size = cfg.data.size if "data.size" in explicit else None
    crop = (cfg.segmentation.crop or cfg.data.size) if "segmentation.crop" in explicit else None
    plan = plan_for(fp, test_fraction=cfg.data.test_fraction,
                    val_fraction=cfg.data.val_fraction, size=size, crop=crop)
    return PlannedRun(apply_plan(cfg, plan, explicit), fp, plan, explicit)
