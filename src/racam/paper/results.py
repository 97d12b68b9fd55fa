"""A reproduction's results, typed: what the report reads from ``reproduce.json``.

:meth:`racam.paper.reproduce.Reproduction.run` writes ``reproduce.json`` (a plain JSON record,
kept as it is so that stored reproductions still render); :meth:`ReproductionResults.from_dict`
reads it, any figure possibly missing (``None`` or an empty list: the report prints ``-``).
Pooled scores stay mappings (``iou``, ``precision``, ... as fractions, ``None`` where undefined,
plus counts), as do bootstrap intervals (:meth:`racam.evaluation.bootstrap.Interval.to_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from racam.evaluation.bootstrap import CONFIDENCE

#: Pooled scores of one view (fractions; ``None``: undefined), possibly with counts and ``seeds``.
Scores = dict[str, Any]
#: Sample sd over classifier seeds of each score (``None``: undefined).
Spread = dict[str, Any]
#: A bootstrap interval: ``estimate``, ``low``, ``high``, ``images``, ... (fractions).
IntervalRecord = dict[str, Any]


def _iou(view: Scores | None) -> float | None:
    return None if not view else view.get("iou")


@dataclass(frozen=True)
class MethodRow:
    """A heat-map method's row (Table I, Table IV, an RA-CAM variant): pooled scores over the
    folds (mean over seeds), their sd, and the first seed's per-fold IoU."""

    method: str = ""
    delta: float | None = None
    paper_view: Scores | None = None
    paper_view_sd: Spread | None = None
    deployment_view: Scores | None = None
    deployment_view_sd: Spread | None = None
    fold_iou: list[float | None] = field(default_factory=list)
    variant: str = ""  # RA-CAM variants: "weighting=element,fgbp_head=sample"

    @property
    def iou(self) -> float | None:
        """Defect IoU on the defective test images (paper's view); ``None`` if missing."""
        return _iou(self.paper_view)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MethodRow:
        return cls(method=d.get("method", ""), delta=d.get("delta"),
                   paper_view=d.get("paper_view"), paper_view_sd=d.get("paper_view_sd"),
                   deployment_view=d.get("deployment_view"),
                   deployment_view_sd=d.get("deployment_view_sd"),
                   fold_iou=list(d.get("fold_iou") or []), variant=d.get("variant") or "")


@dataclass(frozen=True)
class Difference:
    """A Table III network minus another (``b``): the paired interval, or why there is none."""

    b: str
    interval: IntervalRecord | None = None
    reason: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Difference | None:
        return cls(d["b"], d.get("interval"), d.get("reason")) if d else None


@dataclass(frozen=True)
class NetworkRow:
    """A segmentation network's row of Table III: pooled counts over the folds of all test
    images (mean ± sd over ``seeds``), its interval and its differences."""

    arch: str
    source: str  # "true", "pseudo" or "pseudo-st<round>"
    round: int | None = None
    seed: int | None = None
    seeds: list[int] | None = None
    pooled: Scores | None = None
    pooled_sd: Spread | None = None
    fold_iou: list[float | None] = field(default_factory=list)
    interval: IntervalRecord | None = None
    minus_supervised: Difference | None = None
    minus_round0: Difference | None = None

    @property
    def name(self) -> str:
        """``"<arch>-<source>"``, e.g. ``"unet-pseudo"`` (the key of goals and paper numbers)."""
        return f"{self.arch}-{self.source}"

    @property
    def iou(self) -> float | None:
        return _iou(self.pooled)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> NetworkRow:
        return cls(arch=d["arch"], source=d["source"], round=d.get("round"), seed=d.get("seed"),
                   seeds=d.get("seeds"), pooled=d.get("pooled"), pooled_sd=d.get("pooled_sd"),
                   fold_iou=list(d.get("fold_iou") or []), interval=d.get("interval"),
                   minus_supervised=Difference.from_dict(d.get("minus_supervised")),
                   minus_round0=Difference.from_dict(d.get("minus_round0")))


@dataclass(frozen=True)
class SweepRow:
    """RA-CAM at one delta on training and test images (``iou_sd``: sd over seeds)."""

    delta: float
    train: Scores | None = None
    test: Scores | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SweepRow:
        return cls(d["delta"], d.get("train"), d.get("test"))


@dataclass(frozen=True)
class Comparisons:
    """Paired bootstrap intervals of ``IoU(a) - IoU(b)``, by ``(a, b)``, of the comparisons
    that have one."""

    confidence: float = CONFIDENCE
    intervals: dict[tuple[str, str], IntervalRecord] = field(default_factory=dict)

    def get(self, a: str, b: str) -> IntervalRecord | None:
        return self.intervals.get((a, b))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Comparisons:
        if not d:
            return cls()
        return cls(d.get("confidence", CONFIDENCE),
                   {(r["a"], r["b"]): r["interval"] for r in d.get("rows", [])
                    if r.get("interval")})


@dataclass(frozen=True)
class ReproductionResults:
    """Everything ``racam reproduce`` recorded (``reproduce.json``), each part possibly empty."""

    seeds: list[int] = field(default_factory=list)
    chosen_delta: float | None = None
    delta_sweep: list[SweepRow] = field(default_factory=list)
    table_i: list[MethodRow] = field(default_factory=list)
    table_iv: list[MethodRow] = field(default_factory=list)
    racam_variants: list[MethodRow] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)  # why a part was not computed, by part
    comparisons: Comparisons = field(default_factory=Comparisons)
    table_iii: list[NetworkRow] = field(default_factory=list)
    figures: dict[str, str] = field(default_factory=dict)
    classifier: dict[Any, Any] = field(default_factory=dict)  # first seed, by fold
    classifier_per_seed: dict[str, Any] = field(default_factory=dict)  # seed -> fold -> summary
    stage_seconds: dict[str, float] = field(default_factory=dict)
    #: of ``stage_seconds``, those of results a stage computed again over, reusing their work
    replaced_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds_this_call: float | None = None
    wall_seconds_all_calls: float | None = None
    calls: int | None = None
    machine: dict[str, Any] | None = None

    def classifiers(self, first_seed: int) -> dict[str, Any]:
        """Classifier summaries by seed (``str``) and fold; records of one seed only (an older
        ``reproduce.json``) under ``first_seed``."""
        return self.classifier_per_seed or {str(first_seed): self.classifier}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ReproductionResults:
        rows = (d.get("delta_sweep") or {}).get("rows", [])
        return cls(
            seeds=list(d.get("seeds") or []), chosen_delta=d.get("chosen_delta"),
            delta_sweep=[SweepRow.from_dict(r) for r in rows],
            table_i=[MethodRow.from_dict(r) for r in d.get("table_i") or []],
            table_iv=[MethodRow.from_dict(r) for r in d.get("table_iv") or []],
            racam_variants=[MethodRow.from_dict(r) for r in d.get("racam_variants") or []],
            notes=dict(d.get("notes") or {}),
            comparisons=Comparisons.from_dict(d.get("bootstrap")),
            table_iii=[NetworkRow.from_dict(r) for r in d.get("table_iii") or []],
            figures=dict(d.get("figures") or {}), classifier=dict(d.get("classifier") or {}),
            classifier_per_seed=dict(d.get("classifier_per_seed") or {}),
            stage_seconds=dict(d.get("stage_seconds") or {}),
            replaced_seconds=dict(d.get("replaced_seconds") or {}),
            wall_seconds_this_call=d.get("wall_seconds_this_call"),
            wall_seconds_all_calls=d.get("wall_seconds_all_calls"), calls=d.get("calls"),
            machine=d.get("machine") or None)
