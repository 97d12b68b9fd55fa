"""One place for old config files and old run folders.

Everything racam does to read what an earlier racam wrote is here, in one table
(:data:`KEYS`) and one format version (:data:`FORMAT_VERSION`):

- **Config files.** A renamed key (``amp``, ``bf16`` -> ``precision``; ``cam.pseudo_scales``
  -> ``cam.scales``) is translated when a
  config is loaded (:func:`translate_config`; ``racam.config.load_config`` prints one
  deprecation line per file); a retired key that did nothing is an unknown key there.
- **Stage keys** (what a stored stage result was computed under, :mod:`racam.stages.cache`).
  A stored key is read as now (:func:`comparable`): retired keys translated or dropped, keys
  added since held at their earlier-behaviour value left out (new keys are written so too,
  :func:`without_added`), top-level entries added since taken from now. A stored result whose
  key still differs was computed otherwise and is refused in one line naming the keys.
- **Stored results.** Each carries ``"schema"`` (:data:`FORMAT_VERSION`; none: format 1).
  A result of a newer format, or of a format older than :data:`OLDEST_FORMAT`, is refused in one
  line (:func:`check_format`). Fields a format-1 result may lack are listed in
  :data:`LATER_FIELDS`; a stage that needs one fills it in (the heat-map score by computing it
  again, the segmentation score by scoring the stored network again).

The heat-map options of :data:`racam.cam.registry.CAM_OPTION_DEFAULTS` follow the same rule
(left out of keys and file names at their default), applied where the key is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from racam.errors import ConfigError

__all__ = ["FORMAT_VERSION", "KEYS", "LATER_DEFAULTS", "check_format", "comparable",
           "translate_config", "without_added"]

#: Format of stage results and their keys. 1: before results carried ``"schema"``; 2: typed
#: stage results, one ``precision`` key.
FORMAT_VERSION = 2
#: The oldest format this racam reads (older results are refused, not guessed at).
OLDEST_FORMAT = 1


@dataclass(frozen=True)
class Key:
    """One change of the config's keys since run folders were first written.

    ``kind``: ``added`` (``value`` reproduces the behaviour from before the key existed: held
    there, the key is left out of stage keys), ``retired`` (``value`` is what it was stored as
    when it did nothing; dropped), or ``renamed`` (moved to ``into``; ``amp`` and ``bf16``
    are folded into ``precision`` by :func:`_fold_precision`)."""

    section: str
    name: str
    kind: str
    value: Any = None
    into: str | None = None


_ADDED: dict[str, dict[str, Any]] = {
    "data": {"strict": False, "plan": "off"},
    "classifier": {"threshold": 0.5, "threshold_rule": "fixed", "precision": "auto",
                   "channels_last": False,
                   "compile": False, "device_cache": False, "warmup_epochs": 0.0,
                   "schedule": "constant", "restarts": 0, "min_val_auroc": 0.75,
                   "candidates": 1, "keep_epoch": "val_auroc", "keep_tolerance": 0.1},
    "cam": {"pseudo_threshold": "otsu", "scorecam_batch": None, "guided_radius": None,
            "guided_eps": 1e-3, "scales": [1.0], "flips": [], "scale_candidates": None,
            "scale_rule": "area", "good_prior": False},
    "segmentation": {"optimizer": "sgd", "schedule": "constant", "crop": None,
                     "defect_crop_fraction": 0.5, "crop_centres": "defective_images",
                     "channels_last": False,
                     "precision": "auto", "compile": False, "device_cache": False,
                     "train_masks": "none", "train_masks_choice": "random",
                     "train_masks_seed": None,
                     "train_masks_rest": "pseudo", "gate": "none", "mask_cut": "half"},
}

#: The table: every key added, retired or renamed since run folders were first written.
KEYS: tuple[Key, ...] = (
    *(Key(s, k, "added", v) for s, part in _ADDED.items() for k, v in part.items()),
    Key("data", "units", "retired", None),
    Key("classifier", "amp", "renamed", into="precision"),
    Key("segmentation", "amp", "renamed", into="precision"),
    Key("segmentation", "bf16", "renamed", into="precision"),
    # The scales and flips of the pseudo-label maps became those of every heat map (a config
    # that set them ran its pseudo-labels so; its Table I scores were at scale 1 then).
    Key("cam", "pseudo_scales", "renamed", into="scales"),
    Key("cam", "pseudo_flips", "renamed", into="flips"),
)

#: Top-level stage-key entries added after results were first cached (``inputs``: digests of
#: the images and checkpoint, :mod:`racam.stages.identity`; ``cam`` in the classifier's key,
#: whose kept weights the pseudo-labels' area may choose); a stored key without one is
#: compared on the rest.
ADDED_ENTRIES = ("inputs", "cam")

#: Result fields a format-1 result may lack, by stage: filled in when a caller needs them.
LATER_FIELDS = {"cam": ("paper_per_image",), "segmentation": ("per_image",)}

#: ``{section: {key: earlier-behaviour value}}`` of the ``added`` keys (checkpoint resume too).
LATER_DEFAULTS: dict[str, dict[str, Any]] = {}
for _k in KEYS:
    if _k.kind == "added":
        LATER_DEFAULTS.setdefault(_k.section, {})[_k.name] = _k.value


def without_added(section: str, part: dict[str, Any]) -> dict[str, Any]:
    """``part`` (one config section as a dict) without the ``added`` keys of ``section`` that it
    holds at their earlier-behaviour value (how stage keys are written)."""
    later = LATER_DEFAULTS.get(section, {})
    return {k: v for k, v in part.items() if not (k in later and later[k] == v)}


def _fold_precision(part: dict[str, Any]) -> dict[str, Any]:
    """A section with ``amp`` / ``bf16`` folded into ``precision`` (what ``precision: auto``
    did with them): an explicit precision wins; else ``bf16: true`` is ``bf16`` (it applied on
    CPUs, where the recipes using it run), ``amp: false`` is ``float32``, else ``auto``
    (float16 on CUDA, float32 elsewhere: ``amp: true``'s behaviour)."""
    out = {k: v for k, v in part.items() if k not in ("amp", "bf16")}
    if "amp" not in part and "bf16" not in part:
        return out
    setting = part.get("precision", "auto")
    if setting == "auto":
        if part.get("bf16"):
            setting = "bf16"
        elif part.get("amp") is False:
            setting = "float32"
    out["precision"] = setting
    return out


def translate_section(section: str, part: dict[str, Any], *, retired: bool = True
                      ) -> tuple[dict[str, Any], list[str]]:
    """``part`` with the renamed and (with ``retired``) the retired keys of :data:`KEYS`
    handled, and the names of those it held (``["segmentation.bf16"]``)."""
    old = [k for k in KEYS if k.section == section and k.name in part
           and (k.kind == "renamed"
                or (retired and k.kind == "retired" and part[k.name] == k.value))]
    if not old:
        return part, []
    for k in old:
        if k.into == "precision" and not isinstance(part[k.name], bool):
            raise ConfigError(f"{section}.{k.name}: expected true or false, got "
                              f"{part[k.name]!r}")
    out = {k: v for k, v in part.items()
           if not any(o.kind == "retired" and o.name == k for o in old)}
    for k in old:
        if k.kind == "renamed" and k.into is not None and k.into != "precision":
            value = out.pop(k.name)
            out.setdefault(k.into, value)  # an explicit new key wins
    return _fold_precision(out), [f"{section}.{k.name}" for k in old]


def translate_config(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Config data (as loaded from YAML or ``config.json``) with the renamed keys in today's
    names, and the old keys it held (for one deprecation line). A retired key stays an unknown
    key there: it did nothing, and a config naming it is told so."""
    out, old = dict(values), []
    for section in sorted({k.section for k in KEYS}):
        if isinstance(out.get(section), dict):
            out[section], found = translate_section(section, out[section], retired=False)
            old += found
    return out, sorted(old)


def deprecation_line(where: str, old: list[str]) -> str:
    """The one line a config with old keys gets (``old``: from :func:`translate_config`)."""
    into = {f"{k.section}.{k.name}": f"{k.section}.{k.into}" for k in KEYS
            if k.kind == "renamed"}
    moves = "; ".join(f"{o} -> {into.get(o, o)}" for o in old)
    return (f"warning: {where}: renamed keys ({moves}); read as today's keys, please update "
            "the file")


def comparable(stored: Any, now: dict[str, Any]) -> Any:
    """A stored stage key read as today's keys are written (see the module docstring), to be
    compared with ``now``."""
    if not isinstance(stored, dict):
        return stored
    out = dict(stored)
    for section, part in stored.items():
        if isinstance(part, dict):
            out[section] = without_added(section, translate_section(section, part)[0])
    for key in ADDED_ENTRIES:
        if key not in out and key in now:
            out[key] = now[key]
    return out


def check_format(path: Any, value: dict[str, Any]) -> None:
    """Refuse (:class:`ConfigError`, one line) a stored result whose format this racam cannot
    read: written by a newer racam, or older than :data:`OLDEST_FORMAT`."""
    version = value.get("schema", 1)
    if not isinstance(version, int) or not OLDEST_FORMAT <= version <= FORMAT_VERSION:
        raise ConfigError(f"{path}: stored in result format {version!r}, this racam reads "
                          f"formats {OLDEST_FORMAT} to {FORMAT_VERSION}; use another output "
                          "folder (or the racam that wrote it)")
