"""A user's own images: ``good/`` and ``defect/`` sub-folders give the image-level labels.

Layout::

    root/
      good/    *.png|jpg|tif|webp  defect-free images (label 0; any image file Pillow reads)
      defect/  ...                 defective images (label 1)
      masks/   <stem>.<ext>        optional pixel masks, same file stem as the image
      split.yaml | split.json      optional: {"train": [stems], "test": [stems]}

- Masks are optional and used for evaluation only. Without ``masks/`` every sample's mask is
  ``None``. With ``masks/``, an image in ``good/`` without a mask file gets an empty mask (its
  record's ``mask_path`` stays ``None``; ``dataset.true_mask(i)`` returns the empty array).
- Every file is checked first (:func:`racam.data.audit.audit_folder`): the three folders are
  listed by :func:`racam.data.listing.list_images` (links followed; sub-folders are named, not
  searched), images and masks read by :mod:`racam.data.images` / :mod:`racam.data.masks`;
  unreadable images are left out; an image whose mask is missing (``defect/``), empty, of
  another size or contradicting its folder keeps its label for the classifier but has
  ``mask_usable=False`` (``true_mask`` is ``None``: left out of pixel metrics); file stems must
  be unique over ``good/`` and ``defect/`` (a second image with a stem is left out). Each of
  these is a problem the dataset's ``audit`` lists; ``strict=True`` (``data.strict``) makes the
  first an error.
- Split: when ``split.yaml`` or ``split.json`` exists it decides (stems listed under ``train``
  and ``test``; an image listed in neither is in ``"all"`` only). Otherwise a seeded
  stratified split (:mod:`racam.data.stratify`, scikit-learn's StratifiedShuffleSplit) puts
  ``round(test_fraction * n)`` images of each class (at least one, and at least one left for
  training, when the class has two or more) in ``test``. Identical images (same decoded pixels)
  are drawn as one and stay on one side; a split file that separates them is named as a
  problem (``duplicate across the split``): those test scores count a training image.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from racam.data.audit import CLASSES, FolderAudit, Problem, audit_folder
from racam.data.io import Record, RecordDataset
from racam.data.masks import MaskSurvey
from racam.data.spec import DataFields, DatasetSpec, DataSummary, InfoOptions
from racam.data.stratify import grouped_split, stratified_split
from racam.errors import ConfigError, DataError

SPLITS = ("train", "test", "all")
SPLIT_FILES = ("split.yaml", "split.yml", "split.json")
#: Image sizes ``racam data info`` names, the most frequent first (the fingerprint gives the range)
SIZES_SHOWN = 5


def folder_records(root: Path, strict: bool = False) -> list[Record]:
    """Records of every readable image under ``root/good`` and ``root/defect`` (sorted by class,
    name), after :func:`racam.data.audit.audit_folder`: with ``strict`` its first problem is an
    error; otherwise unreadable images are left out and an image without a usable mask keeps
    its folder's label with ``mask_usable=False`` (left out of pixel metrics)."""
    audit = audit_folder(root)
    if strict:
        audit.raise_first()
    return [Record(id=f"{CLASSES[i.label][0]}/{i.path.stem}", image_path=i.path,
                   mask_path=i.mask_path, label=i.label, group=i.path.stem,
                   mask_usable=i.mask_usable) for i in audit.images]


def stratified_assignment(labels: list[int], test_fraction: float, seed: int,
                          groups: list[str] | None = None) -> list[str]:
    """Seeded stratified assignment of each index to ``"train"`` or ``"test"``
    (:func:`racam.data.stratify.stratified_split` picks the test images); indices of one of
    ``groups`` (identical images) stay on one side (:func:`racam.data.stratify.grouped_split`)."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}")
    _, test = (stratified_split(labels, test_fraction, seed) if groups is None
               else grouped_split(labels, groups, test_fraction, seed))
    out = ["train"] * len(labels)
    for i in test:
        out[i] = "test"
    return out


def read_user_split(path: Path, stems: list[str]) -> list[str | None]:
    """Assignment from a user's ``split.yaml``/``split.json`` (``None``: in neither list)."""
    try:
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
        else:
            from racam.yaml_load import load_yaml

            data = load_yaml(text)
    except Exception as exc:  # parse errors of either format
        raise DataError(f"{path}: cannot read split file ({exc})") from None
    if not isinstance(data, dict) or not set(data) <= {"train", "test"}:
        raise DataError(f"{path}: split file must map 'train' and 'test' to lists of file stems")
    known = set(stems)
    where: dict[str, str] = {}
    for part in ("train", "test"):
        items = data.get(part) or []
        if not isinstance(items, list):
            raise DataError(f"{path}: '{part}' must be a list of file stems")
        for s in map(str, items):
            if s not in known:
                raise DataError(f"{path}: '{part}' names {s!r}, which is not an image stem in "
                                "good/ or defect/")
            if s in where:
                raise DataError(f"{path}: {s!r} is listed twice ({where[s]} and {part})")
            where[s] = part
    return [where.get(s) for s in stems]


def split_file(root: Path) -> Path | None:
    """The folder's ``split.yaml`` / ``split.yml`` / ``split.json``, if it has one."""
    return next((root / n for n in SPLIT_FILES if (root / n).is_file()), None)


def split_parts(audit: FolderAudit, split_path: Path | None, test_fraction: float,
                seed: int) -> list[str | None]:
    """Each readable image's side (``"train"``, ``"test"``, ``None``: in neither list), in the
    order of ``audit.images``: from the user's split file, else the seeded stratified split with
    identical images kept on one side."""
    if split_path is not None:
        return read_user_split(split_path, [i.path.stem for i in audit.images])
    return list(stratified_assignment([i.label for i in audit.images], test_fraction, seed,
                                      [i.content or str(i.path) for i in audit.images]))


def split_duplicates(audit: FolderAudit, parts: list[str | None]) -> list[Problem]:
    """A problem for each test image whose identical copy is a training image (possible only
    with a split file): its test scores count an image the networks trained on."""
    train = {i.content: i.path for i, p in zip(audit.images, parts) if p == "train"}
    return [Problem(i.path, "duplicate across the split", f"same content as {train[i.content]} "
                    "in train: the test scores count an image the networks trained on")
            for i, p in zip(audit.images, parts) if p == "test" and i.content in train]


class FolderDataset(RecordDataset):
    """Images of a ``good/`` + ``defect/`` folder, split into ``"train"``/``"test"``/``"all"``.

    ``size=(width, height)`` (``None`` keeps the original size), ``channels`` 1 or 3,
    ``augment`` random flips; ``test_fraction`` and ``seed`` drive the stratified split used
    when the folder has no ``split.yaml``/``split.json``; ``strict`` makes each problem of
    the folder (:mod:`racam.data.audit`) an error.
    """

    def __init__(self, root: str | Path, split: str = "all",
                 size: tuple[int, int] | None = None, channels: int = 1, augment: bool = False,
                 test_fraction: float = 0.3, seed: int = 0, strict: bool = False) -> None:
        self.root = Path(root)
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        records = folder_records(self.root, strict)
        #: every problem of the folder (:mod:`racam.data.audit`), for warnings and reports
        self.audit: FolderAudit = audit_folder(self.root)
        self.split_path = split_file(self.root)
        #: problems of the split (:func:`split_duplicates`), beside :attr:`audit`'s
        self.split_problems: list[Problem] = []
        if split != "all":
            parts = split_parts(self.audit, self.split_path, test_fraction, seed)
            self.split_problems = split_duplicates(self.audit, parts)  # strict: already refused
            records = [r for r, p in zip(records, parts) if p == split]
        self.split = split
        super().__init__(records, size, channels, augment,
                         has_masks=(self.root / "masks").is_dir())


class FolderSpec(DatasetSpec):
    """``data.dataset: folder``: a user's ``good/`` + ``defect/`` folder at ``data.root``."""

    name = "folder"
    description = "your images: good/ and defect/ (optional masks/, split.yaml)"
    info_options = ("test_fraction", "seed")

    def load(self, cfg: DataFields, root: Path, *, fold: int, split: str, augment: bool,
             seed: int) -> FolderDataset:
        return FolderDataset(root, split=split, size=cfg.size, channels=cfg.channels,
                             augment=augment, test_fraction=cfg.test_fraction, seed=seed,
                             strict=bool(getattr(cfg, "strict", False)))

    def detect(self, root: Path) -> bool:
        return (root / "good").is_dir() and (root / "defect").is_dir()

    def summarize(self, root: Path, options: InfoOptions) -> DataSummary:
        """Counts per split, plus class counts, image sizes and every problem of the folder."""
        rows = self.count_rows(root, options)
        audit = audit_folder(root)
        problems = [*audit.problems, *split_duplicates(
            audit, split_parts(audit, split_file(root), options.test_fraction, options.seed))]
        common = audit.sizes.most_common()
        sizes = ", ".join(f"{w}x{h} ({n})" for (w, h), n in common[:SIZES_SHOWN]) + (
            f", and {len(common) - SIZES_SHOWN} more sizes" if len(common) > SIZES_SHOWN else "")
        counts = ", ".join(f"{k} {v}" for k, v in audit.class_counts.items())
        kinds = Counter(p.kind for p in problems).most_common()
        details = [f"readable images: {counts}", f"image sizes (width x height): {sizes}",
                   *MaskSurvey(dict(audit.mask_rules), []).details(),
                   f"{len(problems)} problem(s)"
                   + (": " + ", ".join(f"{n} {k}" for k, n in kinds) if kinds else "")
                   + (f"; {len(audit.without_usable_mask)} image(s) without a usable mask are "
                      "left out of pixel metrics" if audit.without_usable_mask else "")]
        return DataSummary(rows, "", details, [str(p) for p in problems])
