"""The dataset interface: what the pipeline and ``racam data info`` need to know of a dataset.

A dataset is a :class:`DatasetSpec` subclass (name, description, default folder under
``$RACAM_DATA``, how to load one split of one fold, optionally its folds, how to recognise its
folder layout and what ``racam data info`` prints), registered once in
:mod:`racam.data.registry`. See ``docs/adding-a-dataset.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from racam.data.io import RecordDataset


class DataFields(Protocol):
    """The ``data`` section a dataset reads: :class:`racam.config.DataConfig` (a protocol here,
    so that :mod:`racam.data` does not import :mod:`racam.config`)."""

    dataset: str
    size: tuple[int, int]
    channels: int
    folds: list[int]
    split_file: str
    test_fraction: float


#: ``data.folds`` of a config that does not set it (KolektorSDD's three folds).
DEFAULT_FOLDS = (0, 1, 2)


@dataclass(frozen=True)
class SplitCount:
    """Counts of one split: ``name`` such as ``"fold 0 / test"``, ``"train"`` or ``"all"``."""

    name: str
    images: int
    defective: int

    @property
    def defect_free(self) -> int:
        return self.images - self.defective


def count(name: str, labels: list[int]) -> SplitCount:
    """The :class:`SplitCount` of a split's image-level labels."""
    return SplitCount(name, len(labels), int(sum(labels)))


@dataclass(frozen=True)
class InfoOptions:
    """Options of ``racam data info``. ``split_file``: ``None`` for the dataset's default,
    ``"none"`` for no split file (datasets that list ``"split_file"`` in ``info_options``);
    ``test_fraction`` and ``seed`` drive a seeded train/test split (folder datasets)."""

    split_file: str | None = None
    test_fraction: float = 0.3
    seed: int = 0


@dataclass(frozen=True)
class DataSummary:
    """What ``racam data info`` prints: rows of counts, a note for the title (or ``""``), more
    lines of details and warnings."""

    rows: list[SplitCount]
    note: str = ""
    #: more lines to print (class counts, image sizes)
    details: list[str] = field(default_factory=list)
    #: problems of the dataset's files, one per line, printed as warnings
    warnings: list[str] = field(default_factory=list)


@dataclass
class _SummaryFields:
    """The ``data`` fields of a summary: labels only, so size and channels do not matter."""

    dataset: str
    test_fraction: float
    size: tuple[int, int] = (64, 64)
    channels: int = 1
    folds: list[int] = field(default_factory=lambda: [0])
    split_file: str = ""


class DatasetSpec:
    """One kind of dataset (``data.dataset``). Subclass it, set the class attributes and
    implement :meth:`load`; override the other methods where the defaults do not fit.

    Attributes:
        name: the ``data.dataset`` value, e.g. ``"ksdd"``.
        description: one line for help texts and docs.
        root_subdir: folder under ``$RACAM_DATA`` used when ``data.root`` is not set; ``None``
            means ``data.root`` is required.
        info_options: the :class:`InfoOptions` fields this dataset reads (``racam data info``
            refuses ``--split-file`` for a dataset that does not list ``"split_file"``).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    root_subdir: ClassVar[str | None] = None
    info_options: ClassVar[tuple[str, ...]] = ()

    def load(self, cfg: DataFields, root: Path, *, fold: int, split: str, augment: bool,
             seed: int) -> RecordDataset:
        """The images of ``split`` (``"train"``, ``"test"`` or ``"all"``) of ``fold`` under
        ``root``, at ``cfg.size`` with ``cfg.channels``, randomly flipped when ``augment``.
        ``cfg`` is the run's :class:`~racam.config.DataConfig`.

        Must return a :class:`~racam.data.io.RecordDataset` (or anything with ``labels``,
        ``records``, ``true_mask(i)`` whose items are :class:`~racam.data.sample.Sample` s).
        ``seed`` is the run's seed, for datasets whose split is drawn at random.
        """
        raise NotImplementedError

    def folds(self, cfg: DataFields) -> list[int]:
        """The folds a run goes through; results are pooled over them. Default ``[0]``: one
        split, and a ``data.folds`` naming another fold is refused (:class:`ConfigError`) rather
        than ignored; the config's default ``[0, 1, 2]`` (KolektorSDD's folds) is accepted."""
        folds = list(cfg.folds)
        if folds not in ([0], list(DEFAULT_FOLDS)):
            from racam.errors import ConfigError

            raise ConfigError(f"data.folds: {folds}: dataset {self.name} has a single split "
                              "(fold 0); set data.folds to [0] or leave it out")
        return [0]

    def detect(self, root: Path) -> bool:
        """Whether ``root`` has this dataset's layout (``racam data info`` without
        ``--dataset``). Default: never; a dataset that cannot be recognised is named."""
        return False

    def count_rows(self, root: Path, options: InfoOptions) -> list[SplitCount]:
        """Counts of ``all``, ``train`` and ``test`` of fold 0."""
        cfg = _SummaryFields(self.name, options.test_fraction)
        return [count(part, self.load(cfg, root, fold=0, split=part, augment=False,
                                      seed=options.seed).labels)
                for part in ("all", "train", "test")]

    def summarize(self, root: Path, options: InfoOptions) -> DataSummary:
        """Counts for ``racam data info`` (:meth:`count_rows`) and how every mask file reads
        (:func:`racam.data.masks.survey_masks`: rules as details, doubtful masks as
        warnings)."""
        from racam.data.masks import survey_masks

        cfg = _SummaryFields(self.name, options.test_fraction)
        every = self.load(cfg, root, fold=0, split="all", augment=False, seed=options.seed)
        survey = survey_masks([r.mask_path for r in getattr(every, "records", [])
                               if r.mask_path is not None])
        return DataSummary(self.count_rows(root, options), "", survey.details(), survey.warnings)
