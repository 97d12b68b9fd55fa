"""The self-describing model bundle of ``racam export`` and its metadata, ``bundle.json``.

A bundle folder holds ``classifier.onnx``, ``segmentation.onnx`` and ``bundle.json``
(:class:`BundleMeta`): what the networks expect (input size, channels, normalisation), how
their outputs become a decision and a mask (:class:`MaskRule`), the racam version, and the run
it came from (path, fold and SHA-256 of the run's config and checkpoints, :class:`Provenance`),
so that a bundle can be checked against a run (:func:`check_against_run`) and its files against
the metadata. A run folder is described by the same metadata (:func:`meta_from_run`), with its
torch checkpoints as the models, so :class:`racam.deploy.inference.Inferencer` treats both
alike. Folders of an earlier ``racam export`` (``export.json``, no digests) are read too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from racam.deploy.run_dir import RunDigests, TrainedRun
from racam.errors import CheckpointError, DataError
from racam.io import read_json

__all__ = ["BUNDLE_JSON", "CLASSIFIER_ONNX", "SCHEMA", "SEGMENTATION_ONNX", "BundleMeta",
           "Int8Record", "MaskRule", "ModelFile", "Normalisation", "Provenance",
           "check_against_run", "is_bundle", "meta_from_run", "read_bundle"]

#: Version of the ``bundle.json`` layout.
SCHEMA = 1
BUNDLE_JSON = "bundle.json"
LEGACY_JSON = "export.json"  # written by racam export before bundles (no digests)
CLASSIFIER_ONNX = "classifier.onnx"
SEGMENTATION_ONNX = "segmentation.onnx"


@dataclass(frozen=True)
class Normalisation:
    """How an image becomes the networks' input: values scaled to ``[0, 1]`` (8-bit / 255,
    16-bit / 65535, float kept), resized bilinear to the input size, then ``(x - mean) / std``
    (identity: the ImageNet normalisation of pretrained weights is folded into the first
    layer)."""

    range: tuple[float, float] = (0.0, 1.0)
    mean: float = 0.0
    std: float = 1.0
    resize: str = "bilinear"


@dataclass(frozen=True)
class MaskRule:
    """How a mask is derived from a network output: ``activation`` over the output's channels,
    channel ``channel`` (defect), resized ``resize`` to the image's original size, then
    ``mask = value > threshold`` (``"otsu"``: Otsu's threshold of each resized map; a name of
    :data:`racam.segmentation.mask_cut.MASK_CUTS`: that cut of each resized map). ``gated``:
    the mask is empty when the image's defect probability is below the decision threshold (heat
    maps always; segmentation masks of a run with ``segmentation.gate: classifier``; absent in
    an older ``bundle.json``: ``False``)."""

    source: str = "seg"
    output: str = "segmentation logits (B, 2, H, W)"
    activation: str = "softmax"
    channel: int = 1
    resize: str = "bilinear"
    threshold: float | str = 0.5
    gated: bool = False


@dataclass(frozen=True)
class ModelFile:
    """One network of a bundle (``format="onnx"``) or run (``"torch"``): its file relative to
    the folder, its SHA-256, the dynamic input axes (ONNX), the run checkpoint it came from and
    its ``precision`` (``fp32``, or ``int8`` for a file of ``racam export --int8``)."""

    file: str
    format: str
    sha256: str = ""
    dynamic_axes: list[str] = field(default_factory=list)
    checkpoint: str = ""
    precision: str = "fp32"


@dataclass(frozen=True)
class Int8Record:
    """What ``bundle.json`` says of an INT8 bundle: its INT8 files, how they were quantised,
    the calibration images (count and where from) and, on ``agreement_images`` other training
    images, the share of segmentation mask pixels (at the input size, the mask rule's
    threshold) and of classifier decisions that equal the fp32 networks'."""

    files: list[str]
    method: str
    calibration_images: int
    calibration_source: str
    agreement_images: int
    mask_agreement: float
    decision_agreement: float


@dataclass(frozen=True)
class Provenance:
    """The run a bundle came from: its path at export time, fold and digests
    (:class:`racam.deploy.run_dir.RunDigests`; empty for an ``export.json`` folder)."""

    run: str
    fold: int
    config_sha256: str = ""
    classifier_sha256: str = ""
    segmentation_sha256: str = ""


@dataclass(frozen=True)
class BundleMeta:
    """Everything needed to apply a bundle or run to new images (module docstring)."""

    size: tuple[int, int]
    channels: int
    decision_threshold: float
    source: Provenance
    models: dict[str, ModelFile]
    normalisation: Normalisation = Normalisation()
    mask: MaskRule = MaskRule()
    racam_version: str = ""
    opset: int | None = None
    schema: int = SCHEMA
    #: network input pixels per image pixel (x, y) of the run's training images: the scale
    #: at which images far larger than the input are segmented in tiles (racam.deploy.tiles);
    #: None when the run's images could not be read at export
    scale: tuple[float, float] | None = None
    int8: Int8Record | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (what ``bundle.json`` holds)."""
        return asdict(self)

    def describe(self) -> str:
        """``run R (fold k; C channel(s), WxH)``: for messages."""
        w, h = self.size
        s = self.source
        return f"run {s.run} (fold {s.fold}; {self.channels} channel(s), {w}x{h})"


def meta_from_run(run: TrainedRun, digests: RunDigests,
                  models: dict[str, ModelFile] | None = None, opset: int | None = None,
                  scale: tuple[float, float] | None = None, int8: Int8Record | None = None
                  ) -> BundleMeta:
    """The metadata of ``run``: its torch checkpoints as models unless ``models`` is given (the
    ONNX files of an export); its segmentation masks gated by the classifier's decision when
    the run's ``segmentation.gate`` says so; cut by its ``segmentation.mask_cut``."""
    from racam import __version__
    from racam.segmentation.mask_cut import bundle_threshold

    if models is None:
        models = {"classifier": ModelFile(_rel(run.classifier_path, run.root), "torch",
                                          digests.classifier),
                  "segmentation": ModelFile(_rel(run.segmentation_path, run.root), "torch",
                                            digests.segmentation)}
    source = Provenance(str(run.root.resolve()), run.fold, digests.config, digests.classifier,
                        digests.segmentation)
    return BundleMeta(size=run.size, channels=run.channels, decision_threshold=run.threshold,
                      source=source, models=models, racam_version=__version__, opset=opset,
                      scale=scale, int8=int8,
                      mask=MaskRule(threshold=bundle_threshold(run.cfg.segmentation.mask_cut),
                                    gated=run.cfg.segmentation.gate == "classifier"))


def _rel(path: Path, root: Path) -> str:
    return Path(path).relative_to(root).as_posix()


def is_bundle(folder: Path) -> bool:
    """Whether ``folder`` holds ``bundle.json`` or an earlier ``export.json``."""
    return (Path(folder) / BUNDLE_JSON).is_file() or (Path(folder) / LEGACY_JSON).is_file()


def read_bundle(folder: Path) -> BundleMeta:
    """The metadata of the bundle in ``folder``; a missing or malformed file is a
    :class:`~racam.errors.DataError` naming it and the key."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: bundle folder not found")
    path = folder / BUNDLE_JSON
    if not path.is_file():
        if (folder / LEGACY_JSON).is_file():
            return _read_legacy(folder / LEGACY_JSON)
        raise DataError(f"{folder}: not a racam export bundle (no {BUNDLE_JSON}); write one "
                        "with racam export RUN --out DIR")
    try:
        d = read_json(path)
        if d.get("schema") != SCHEMA:
            raise DataError(f"{path}: bundle schema {d.get('schema')!r}, this racam reads "
                            f"{SCHEMA}; export the run again with this racam")
        return BundleMeta(
            size=(int(d["size"][0]), int(d["size"][1])), channels=int(d["channels"]),
            decision_threshold=float(d["decision_threshold"]),
            source=Provenance(**d["source"]),
            models={k: ModelFile(**v) for k, v in d["models"].items()},
            normalisation=Normalisation(**{**d["normalisation"],
                                           "range": tuple(d["normalisation"]["range"])}),
            mask=_mask_rule(d["mask"]), racam_version=str(d["racam_version"]),
            opset=d.get("opset"), schema=SCHEMA,
            scale=(float(d["scale"][0]), float(d["scale"][1])) if d.get("scale") else None,
            int8=Int8Record(**d["int8"]) if d.get("int8") else None)
    except DataError:
        raise
    except KeyError as exc:
        raise DataError(f"{path}: key {exc} missing; not a racam bundle.json") from None
    except (ValueError, TypeError, IndexError, AttributeError) as exc:
        raise DataError(f"{path}: not a valid racam bundle.json ({exc})") from None


def _mask_rule(d: dict[str, Any]) -> MaskRule:
    """The ``mask`` entry; a threshold that is neither a number nor a known cut: ValueError."""
    from racam.segmentation.mask_cut import MASK_CUTS

    rule = MaskRule(**d)
    t = rule.threshold
    if isinstance(t, str) and t not in ("otsu", *MASK_CUTS.names()):
        raise ValueError(f"mask threshold {t!r} is neither a number nor a cut this racam knows "
                         f"({', '.join(MASK_CUTS.names())})")
    return rule


def _read_legacy(path: Path) -> BundleMeta:
    """An ``export.json`` of an earlier racam export: no digests, the run's path only."""
    try:
        d = read_json(path)
        models = {k: ModelFile(d[k]["file"], "onnx", "", list(d[k].get("dynamic_axes", [])))
                  for k in ("classifier", "segmentation")}
        return BundleMeta(size=(int(d["size"][0]), int(d["size"][1])),
                          channels=int(d["channels"]),
                          decision_threshold=float(d["threshold"]),
                          source=Provenance(str(d["run"]), int(d["fold"])), models=models,
                          opset=d.get("opset"))
    except KeyError as exc:
        raise DataError(f"{path}: key {exc} missing; not a racam export.json") from None
    except (ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{path}: not a valid racam export.json ({exc})") from None


def check_against_run(meta: BundleMeta, bundle: Path, run: TrainedRun,
                      digests: RunDigests) -> None:
    """Refuse (one line naming both) a bundle that was not exported from ``run``'s fold and
    checkpoints, or that expects other input (channels, size)."""
    differ = []
    if meta.channels != run.channels:
        differ.append(f"{meta.channels} input channel(s) there, {run.channels} here")
    if tuple(meta.size) != tuple(run.size):
        differ.append(f"input size {meta.size[0]}x{meta.size[1]} there, "
                      f"{run.size[0]}x{run.size[1]} here")
    if meta.source.fold != run.fold:
        differ.append(f"fold {meta.source.fold} there, {run.fold} here")
    s = meta.source
    if s.config_sha256:
        differ += [f"another {what}" for what, a, b in (
            ("config", s.config_sha256, digests.config),
            ("classifier checkpoint", s.classifier_sha256, digests.classifier),
            ("segmentation checkpoint", s.segmentation_sha256, digests.segmentation)) if a != b]
    elif Path(s.run).resolve() != run.root.resolve():  # export.json: the path is all we have
        differ.append("another run folder")
    if differ:
        raise CheckpointError(
            f"--onnx {bundle}: exported from {meta.describe()}, not from the run {run.root} "
            f"(fold {run.fold}): {'; '.join(differ)}; export this run again (racam export "
            f"{run.root} --out DIR) or predict with the run the bundle came from")
