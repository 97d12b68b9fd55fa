"""The dataset registry: every ``data.dataset`` name and its :class:`~racam.data.spec.DatasetSpec`.

The pipeline's folds (:mod:`racam.stages.folds`), ``racam data info``, the config check of
``data.dataset`` and :func:`racam.data.summarize` all read this registry. Adding a dataset is one
module with a :class:`~racam.data.spec.DatasetSpec` subclass plus one line in
:data:`BUILTIN` (or a :func:`register` call in your own code); see ``docs/adding-a-dataset.md``.

Dataset folders: ``data.root`` when set (``builtin:ksdd_sample`` names the KolektorSDD sample
bundled with racam, ``builtin:ksdd_sample_folder`` the same images as a folder dataset,
:mod:`racam.data.sample_view`), else ``$RACAM_DATA/<root_subdir>`` of the dataset. There is no
other default.
"""

from __future__ import annotations

import os
from pathlib import Path

from racam.data.folder import FolderSpec
from racam.data.ksdd import KolektorSDDSpec
from racam.data.ksdd2 import KolektorSDD2Spec
from racam.data.spec import DatasetSpec
from racam.errors import ConfigError
from racam.registry import Registry

#: ``data.root`` values naming a dataset folder shipped with racam.
BUILTIN_ROOTS = {"builtin:ksdd_sample": Path(__file__).resolve().parent.parent / "assets"
                 / "ksdd_sample"}
#: ``data.root`` values naming a view of a built-in root, made on first use.
BUILTIN_VIEWS = {"builtin:ksdd_sample_folder": "builtin:ksdd_sample"}
#: The environment variable holding the folder of the datasets' default folders.
DATA_ENV = "RACAM_DATA"

#: The datasets by ``data.dataset`` name (a :class:`racam.registry.Registry` of specs).
DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register(spec: DatasetSpec) -> DatasetSpec:
    """Add ``spec`` under ``spec.name`` (a name already registered is an error)."""
    return DATASETS.add(spec.name, spec)


def unregister(name: str) -> None:
    """Remove a dataset (tests register toy datasets and remove them again)."""
    DATASETS.remove(name)


def names() -> list[str]:
    """Registered dataset names, in registration order."""
    return DATASETS.names()


def get(name: str) -> DatasetSpec:
    """The spec of ``name``, or a :class:`ConfigError` listing the registered names."""
    return DATASETS.get(name)


def detect(root: str | Path, default: str = "ksdd") -> str:
    """The dataset whose :meth:`~DatasetSpec.detect` accepts ``root``'s layout, else
    ``default``. The latest registered is asked first, so a dataset you register takes
    precedence over the built-in ones (``folder`` before ``ksdd2``; ``ksdd`` detects nothing
    and is the default)."""
    r = Path(root)
    return next((n for n, s in reversed(DATASETS.items()) if s.detect(r)), default)


def builtin_root(root: str) -> Path | None:
    """The folder of a ``builtin:`` root shipped with racam (a view of one: built on first use,
    :func:`racam.data.sample_view.folder_view`), ``None`` for any other value."""
    if root in BUILTIN_VIEWS:
        from racam.data.sample_view import folder_view

        return folder_view(BUILTIN_ROOTS[BUILTIN_VIEWS[root]])
    return BUILTIN_ROOTS.get(root)


def resolve_root(dataset: str, root: str | None) -> Path:
    """The folder of ``dataset``: ``root`` when given, else ``$RACAM_DATA/<root_subdir>``.

    Raises :class:`ConfigError` naming both ways (``data.root`` and ``$RACAM_DATA``) when
    neither is set, and naming ``data.root`` for a dataset without a default folder.
    """
    if root:
        return builtin_root(root) or Path(root).expanduser()
    spec = get(dataset)
    if spec.root_subdir is None:
        raise ConfigError(f"data.root: required for dataset {dataset!r} ({spec.description}); "
                          "set it, e.g. --set data.root=PATH")
    base = os.environ.get(DATA_ENV)
    if not base:
        raise ConfigError(
            f"data.root: not set, and ${DATA_ENV} is not set either, so the {dataset!r} "
            f"folder is unknown; set data.root to the {spec.root_subdir} folder (e.g. --set "
            f"data.root=PATH) or set {DATA_ENV} to the folder that holds {spec.root_subdir}/ "
            f"(export {DATA_ENV}=PATH)")
    return Path(base).expanduser() / spec.root_subdir


#: The datasets shipped with racam; one line per dataset.
BUILTIN: tuple[DatasetSpec, ...] = (
    KolektorSDDSpec(),
    KolektorSDD2Spec(),
    FolderSpec(),
)
for _spec in BUILTIN:
    register(_spec)
