"""Restarting a classifier that did not learn (``classifier.restarts``), and choosing among
several (``classifier.candidates``).

A classifier trained from scratch sometimes never leaves the chance level: its training loss
stays at ln 2 and its validation AUROC near 0.5 for every epoch (at CPU scale 1 of 5 runs with
warm-up; without it 3 of 9 classifiers ended at test AUROC 0.48-0.67). Its heat maps then find
nothing, and every later stage inherits that.
Judged on validation images only, such a run is detected and trained again from a fresh
initialisation: attempt ``k`` uses the seed ``seed + RESTART_SEED_STEP * k`` and the folder
``out_dir/restart<k>`` (attempt 0 is ``out_dir`` itself, so run folders from before the option
stay valid). The first attempt whose kept epoch reaches ``min_val_auroc`` is used; if none does,
the attempt with the highest validation AUROC.

With ``candidates: K`` the first ``K`` attempts are always trained (restarts follow only while
none passes), and among those that pass the one with the lowest ``score`` is used: the pipeline
scores a classifier by the share of the defective training images its pseudo-labels mark
(:func:`racam.pseudo.area.pseudo_label_area`, label-free: a weak classifier's maps spread over
the image). The stage's ``result.json`` lists the attempts; :func:`chosen_checkpoint` reads the
chosen one back (``racam predict``, scripts).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from racam.classifier.train import ClassifierResult, train_classifier
from racam.config import ClassifierConfig
from racam.io import read_json

#: seed offset between attempts
RESTART_SEED_STEP = 1000


def kept_val_auroc(result: ClassifierResult) -> float | None:
    """Validation AUROC of the epoch ``result`` keeps (``None`` when undefined)."""
    if not result.history or result.best_epoch < 1:
        return None
    value = result.history[result.best_epoch - 1].get("val_auroc")
    return None if value is None else float(value)


def attempt_dir(out_dir: Path, attempt: int) -> Path:
    """Folder of attempt ``attempt``: ``out_dir`` for the first, ``out_dir/restart<k>`` after."""
    return Path(out_dir) if attempt == 0 else Path(out_dir) / f"restart{attempt}"


def train_until_learned(cfg: ClassifierConfig, train_ds: Dataset, val_ds: Dataset | None,
                        out_dir: Path, *, seed: int, log: Callable[[str], None] = print,
                        score: Callable[[ClassifierResult], float] | None = None,
                        score_name: str = "score",
                        keep: Callable[[ClassifierResult], ClassifierResult] | None = None,
                        **kwargs: Any) -> tuple[ClassifierResult, list[dict[str, Any]]]:
    """:func:`train_classifier` for ``cfg.candidates`` attempts, then again with another seed
    while no attempt's kept epoch reaches ``cfg.min_val_auroc`` on the validation images (at
    most ``cfg.restarts`` more; without validation images every attempt passes). Among the
    passing attempts the one with the lowest ``score(result)`` is chosen when there are several
    and ``score`` is given, else the first; with none passing, the highest validation AUROC.
    ``keep(result)`` may replace each attempt's kept epoch first (``classifier.keep_epoch``).
    Returns the chosen result and one record per attempt (seed, folder, validation AUROC,
    ``score_name`` where scored, whether it was chosen)."""
    attempts: list[tuple[ClassifierResult, dict[str, Any]]] = []

    def passes(rec: dict[str, Any]) -> bool:
        auroc = rec["val_auroc"]
        return val_ds is None or (auroc is not None and auroc >= cfg.min_val_auroc)

    for k in range(cfg.candidates + cfg.restarts):
        s = seed + RESTART_SEED_STEP * k
        res = train_classifier(cfg, train_ds, val_ds, attempt_dir(out_dir, k), seed=s, **kwargs)
        if keep is not None and not res.diverged_at and res.history:
            res = keep(res)
        auroc = kept_val_auroc(res)
        attempts.append((res, {"attempt": k, "seed": s, "checkpoint": str(res.best_path),
                               "val_auroc": auroc,
                               **({"diverged_at": res.diverged_at} if res.diverged_at else {})}))
        if res.diverged_at:
            log(f"[racam] warning: classifier training diverged at epoch {res.diverged_at} "
                f"(seed {s}); keeping epoch {res.best_epoch} (validation AUROC {auroc})")
        if k + 1 >= cfg.candidates and any(passes(rec) for _, rec in attempts):
            break
        if k + 1 >= cfg.candidates and k + 1 < cfg.candidates + cfg.restarts:
            log(f"[racam] classifier: validation AUROC {auroc} < {cfg.min_val_auroc:g} "
                f"(seed {s}); training again with seed {s + RESTART_SEED_STEP}")
    passed = [a for a in attempts if passes(a[1])]
    if score is not None and len(passed) > 1:
        for res, rec in passed:
            rec[score_name] = score(res)
        chosen = min(passed, key=lambda a: a[1][score_name])
    elif passed:
        chosen = passed[0]
    else:
        chosen = max(attempts, key=lambda a: -1.0 if a[1]["val_auroc"] is None
                     else a[1]["val_auroc"])
    records = [{**rec, "chosen": rec is chosen[1]} for _, rec in attempts]
    return chosen[0], records


def chosen_checkpoint(classifier_dir: Path) -> Path:
    """The checkpoint a finished classifier stage uses: ``best.pt`` of the chosen attempt listed
    in ``classifier_dir/result.json`` (found by attempt number, so a moved run folder still
    works), else ``classifier_dir/best.pt``; the kept epoch's file instead when the stage kept
    an epoch by area (``epoch_choice``, :mod:`racam.classifier.epochs`)."""
    classifier_dir = Path(classifier_dir)
    result = classifier_dir / "result.json"
    stored = read_json(result) if result.is_file() else {}
    chosen = [a for a in stored.get("attempts") or [] if a.get("chosen")]
    folder = attempt_dir(classifier_dir, int(chosen[0]["attempt"]) if chosen else 0)
    choice = stored.get("epoch_choice")
    return folder / (choice["file"] if choice else "best.pt")
