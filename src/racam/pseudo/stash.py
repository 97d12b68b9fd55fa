"""Pseudo-label masks kept from scoring a classifier candidate or epoch, for the pseudo-label
stage.

Scoring a ``classifier.candidates`` attempt or a ``classifier.keep_epoch: pseudo_area`` epoch
(:func:`racam.pseudo.area.pseudo_label_area`) computes the pseudo-label masks of the defective
training images exactly as the pseudo-label stage would for that classifier. :class:`MaskStash`
keeps them next to the checkpoint, in
``<checkpoint folder>/pseudo-masks/<checkpoint name>/<pseudo key>/`` (one folder per checkpoint:
the scored epochs share ``epochs/``, and the kept one's masks must outlive the later ones'),
laid out as the stage's work folder (``key.json`` first, then ``masks/`` and ``ignore/``; see
:mod:`racam.pseudo.labels`). When the kept classifier's pseudo-labels are then written,
:func:`adopt_stash` copies that folder to the stage's work folder ``<out_dir>.partial`` if its
``key.json`` equals the stage's key (same config, images and checkpoint digest), and
:func:`~racam.pseudo.labels.write_pseudo_labels` computes only the masks missing there: the
defect-free images' empty masks, and those of an interrupted score. Under another key (e.g.
``racam reproduce`` choosing another delta) nothing is copied and every mask is computed.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from torch import Tensor

from racam import distributed
from racam.data.sample import Sample
from racam.io import atomic_write_json, read_json
from racam.pseudo.labels import KEY_FILE, MANIFEST, PARTIAL_SUFFIX, save_mask

#: Sub-folder of a checkpoint's folder holding the kept masks, one folder per pseudo key.
STASH_DIR = "pseudo-masks"


def stash_dir(checkpoint: str | Path, pseudo_key: str) -> Path:
    """Where the masks of the classifier at ``checkpoint`` under the pseudo-label method
    ``pseudo_key`` (:func:`racam.layout.pseudo_key`) are kept."""
    path = Path(checkpoint)
    return path.parent / STASH_DIR / path.stem / pseudo_key


def _stored_key(folder: Path) -> Any:
    path = folder / KEY_FILE
    return read_json(path) if path.is_file() else None


class MaskStash:
    """Keeps masks under ``key`` (JSON data: the pseudo-label stage's key) in ``folder``:
    masks kept under another key are removed first (the folder is racam's own). Only rank 0
    writes; :meth:`keep` is the ``keep`` of :func:`racam.pseudo.area.pseudo_label_area`."""

    def __init__(self, folder: Path, key: Any) -> None:
        self.folder = Path(folder)
        self.write = distributed.is_main()
        if self.write and _stored_key(self.folder) != key:
            if self.folder.exists():
                shutil.rmtree(self.folder)
            self.folder.mkdir(parents=True)
            atomic_write_json(self.folder / KEY_FILE, key)

    def keep(self, sample: Sample, mask: Tensor, ignore: Tensor | None) -> None:
        if self.write:
            save_mask(self.folder, sample.id, mask, ignore)


def adopt_stash(stash: Path, out_dir: Path, key: Any) -> bool:
    """Copy the masks kept in ``stash`` to ``<out_dir>.partial`` when they were kept under
    ``key`` and the stage has neither finished nor started ``out_dir`` (rank 0; returns whether
    it copied)."""
    work = out_dir.with_name(out_dir.name + PARTIAL_SUFFIX)
    if (not distributed.is_main() or (out_dir / MANIFEST).exists() or work.exists()
            or _stored_key(stash) != key):
        return False
    tmp = work.with_name(work.name + ".copy")
    if tmp.exists():  # an interrupted copy
        shutil.rmtree(tmp)
    shutil.copytree(stash, tmp)
    tmp.rename(work)
    return True
