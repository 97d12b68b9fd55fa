"""What every stage of one run shares: the config, the run folder, the device, the log, the
fold datasets, the stage keys' config parts and input digests, timing and the result cache."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import torch

from racam import distributed
from racam.cam.registry import CAM_OPTION_DEFAULTS, method_options
from racam.compat import without_added
from racam.config import RunConfig
from racam.io import atomic_write_json, read_json
from racam.layout import fold_list, in_run_folder
from racam.stages.cache import SHOWN_DIFFERENCES, cached, stale_entries
from racam.stages.elapsed import replaced_seconds, timed_stage
from racam.stages.folds import FoldData, fold_datasets
from racam.stages.identity import file_digest, records_digest
from racam.stages.problems import DataProblems
from racam.stages.results import StageResult
from racam.training import resolve_device

R = TypeVar("R", bound=StageResult)

#: Config keys left out of stage keys: they change how fast, not what, a stage computes
#: (``classifier.threshold_rule``: only the classifier stage's, which keys it on its own).
VOLATILE: dict[str, tuple[str, ...]] = {"cam": ("num_workers", "batch_size", "scorecam_batch"),
                                        "classifier": ("num_workers", "threshold_rule")}


def _quiet(line: str) -> None:
    """The log of ranks other than 0."""


class StageContext:
    """The shared plumbing of one run's stages. ``log`` receives progress lines (rank 0)."""

    def __init__(self, cfg: RunConfig, out: Path, *, progress: bool,
                 log: Callable[[str], None]) -> None:
        self.cfg = cfg
        self.out = Path(out)
        main = distributed.is_main()
        self.progress = progress and main
        self.log = log if main else _quiet
        self.device: torch.device = resolve_device(cfg.device)
        self._data: dict[int, FoldData] = {}
        self._warned = False
        self._precision_noted: set[str] = set()
        self._digests: dict[tuple[str, int], str] = {}
        self._config_written = False
        self._run_cfg: RunConfig | None = None  # the run's own config under config_as
        #: Stages computed in this process (not reused from the cache).
        self.stages_computed = 0

    # ------------------------------------------------------------------ folds
    @property
    def folds(self) -> list[int]:
        return fold_list(self.cfg.data)

    def fold_dir(self, fold: int) -> Path:
        return self.out / f"fold{fold}"

    def data(self, fold: int) -> FoldData:
        """The fold's datasets (loaded once); a folder dataset's problems are logged once."""
        if fold not in self._data:
            self._data[fold] = fold_datasets(self.cfg.data, fold, self.cfg.seed)
            if not self._warned:
                self._warned = True
                for line in self.data_problems(fold).log_lines():
                    self.log(f"[racam] warning: {line}")
        return self._data[fold]

    def note_precision(self, key: str, setting: str) -> None:
        """Log once when the precision ``key`` (``classifier.precision``,
        ``segmentation.precision``) trains slower than it has to or not as written
        (:func:`racam.precision.precision_warning`)."""
        from racam.precision import precision_warning

        line = precision_warning(key, setting, self.device)
        if line and key not in self._precision_noted:
            self._precision_noted.add(key)
            self.log(f"[racam] warning: {line}")

    def data_problems(self, fold: int) -> DataProblems:
        test = self.data(fold).test
        audit = getattr(test, "audit", None)
        if audit is None:
            return DataProblems()
        return DataProblems.found([*audit.problems, *getattr(test, "split_problems", [])],
                                  audit.without_usable_mask)

    def has_masks(self, fold: int) -> bool:
        """Whether the fold's test images have true masks (a folder dataset may have none)."""
        return bool(getattr(self.data(fold).test, "has_masks", True))

    def pseudo_mask_options(self) -> dict[str, Any]:
        """How the config turns a heat map into a pseudo-label mask (threshold rule, guided-filter
        refinement) and the batching: the keyword arguments of
        :func:`racam.pseudo.labels.iter_pseudo_masks`, shared by the pseudo-label stage and the
        ``classifier.candidates`` score."""
        from racam.pseudo.guided import guided_refiner

        c = self.cfg.cam
        return {"threshold": c.pseudo_threshold, "batch_size": c.batch_size,
                "device": self.device,
                "refine": None if c.guided_radius is None else guided_refiner(c.guided_radius,
                                                                              c.guided_eps)}

    # -------------------------------------------------------------- stage keys
    def method_options(self, method: str, weighting: str | None = None,
                       fgbp_head: str | None = None) -> dict[str, str]:
        """:func:`method_options` with the config's values where none are given."""
        c = self.cfg.cam
        return method_options(method, weighting or c.weighting, fgbp_head or c.fgbp_head)

    def key(self, *sections: str) -> dict[str, Any]:
        """The config a stage depends on: the named sections and the seed, without the
        :data:`VOLATILE` keys and the added keys at their earlier value
        (:func:`racam.compat.without_added`); the ``cam`` options of
        :data:`CAM_OPTION_DEFAULTS` only where they apply to ``cam.method`` and differ from
        their default."""
        key: dict[str, Any] = {"seed": self.cfg.seed}
        for name in sections:
            part = dataclasses.asdict(getattr(self.cfg, name))
            for volatile in VOLATILE.get(name, ("num_workers",)):
                part.pop(volatile, None)
            if name == "cam":
                for opt in CAM_OPTION_DEFAULTS:
                    part.pop(opt, None)
                if part.get("guided_radius") is None:  # eps means nothing without a radius
                    part.pop("guided_eps", None)
                if not part.get("scale_candidates"):  # nor the rule without candidates
                    part.pop("scale_rule", None)
                part.update(self.method_options(self.cfg.cam.method))
            key[name] = without_added(name, part)
        return key

    def inputs(self, fold: int, checkpoint: Callable[[], str] | None = None) -> dict[str, Any]:
        """The ``inputs`` entry of a stage key: digests of the fold's images and (given the
        classifier checkpoint's path, ``checkpoint()``) of that checkpoint."""
        if ("data", fold) not in self._digests:
            fd = self.data(fold)
            self._digests["data", fold] = records_digest([("train", fd.train_all),
                                                          ("test", fd.test)])
        out = {"data": self._digests["data", fold]}
        if checkpoint is not None:
            if ("checkpoint", fold) not in self._digests:
                self._digests["checkpoint", fold] = file_digest(checkpoint())
            out["checkpoint"] = self._digests["checkpoint", fold]
        return out

    # ---------------------------------------------------------- computing
    @contextlib.contextmanager
    def config_as(self, cfg: RunConfig) -> Iterator[None]:
        """Run stages under ``cfg`` for a while (the run with ``segmentation.train_masks:
        none`` that a ``ranked`` choice reads its list from); ``config.json`` stays the
        run's own config."""
        before, outer = self.cfg, self._run_cfg
        self._run_cfg, self.cfg = outer or before, cfg
        try:
            yield
        finally:
            self.cfg, self._run_cfg = before, outer

    def write_config(self) -> None:
        """``config.json``: the config of the latest call that computed a stage (written before
        its first stage, never by a call that only reuses or refuses)."""
        if not self._config_written:
            if distributed.is_main():
                atomic_write_json(self.out / "config.json",
                                  (self._run_cfg or self.cfg).to_dict())
            self._config_written = True

    def stage(self, cls: type[R], label: str, path: Path, compute: Callable[[], R],
              key: dict[str, Any], require: tuple[str, ...] = (),
              recompute: tuple[str, ...] = ()) -> R:
        """The result stored at ``path`` under ``key`` (:func:`racam.stages.cache.cached`), or
        ``compute()``'s, logged, timed (:func:`racam.stages.elapsed.timed_stage`) and stored.
        A stored result that differs from ``key`` only in the entries named in ``recompute``
        is computed again (the log names what changed)."""
        def run() -> dict[str, Any]:
            self.write_config()
            replaced = replaced_seconds(path)
            if path.exists() and (stale := stale_entries(read_json(path), key)):
                self.log(f"[racam] {label}: computed again, its config changed ("
                         + "; ".join(stale[:SHOWN_DIFFERENCES]) + ")")
            self.log(f"[racam] {label} ...")
            value = timed_stage(path, lambda: compute().to_json(), replaced)
            self.stages_computed += 1
            earlier = sum(value.get("interrupted_seconds", []))
            self.log(f"[racam] {label} done in {value['seconds']:.1f} s"
                     + (f" ({earlier:.1f} s of it in earlier interrupted calls)" if earlier
                        else ""))
            return value

        result = cls.from_json(cached(path, run, key, require=require, recompute=recompute))
        stored = getattr(result, "checkpoint", None)
        if stored:  # the run folder may have been moved or copied since the stage stored it
            found = in_run_folder(stored, self.out)
            result = result if found == stored else result.replace(checkpoint=found)
        return result
