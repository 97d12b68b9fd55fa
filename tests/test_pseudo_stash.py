"""The masks computed while choosing among ``classifier.candidates`` are reused by the
pseudo-label stage (:mod:`racam.pseudo.stash`): the stage then computes no heat map of a
defective training image, and its masks (and ignore bands) are byte for byte those it computes
without the kept masks. Masks kept under another key are not taken."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from helpers import TINY_CFG, count_label_heat_maps
from PIL import Image

from racam.config import load_config
from racam.engine import Engine
from racam.io import read_json
from racam.pseudo.stash import STASH_DIR, adopt_stash


def _cfg(out: Path):
    return load_config(TINY_CFG, {"output": str(out), "device": "cpu", "data.size": [64, 160],
                                "classifier.epochs": 2, "classifier.samples_per_epoch": 16,
                                "classifier.candidates": 2, "classifier.min_val_auroc": 0.0,
                                "cam.guided_radius": 4, "cam.pseudo_threshold": "band"})


def _pngs(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.asarray(Image.open(p))
            for p in sorted(folder.rglob("*.png"))}


def test_the_kept_candidates_masks_are_reused_and_equal_those_computed_again(
        tmp_path, monkeypatch) -> None:
    said: list[str] = []
    engine = Engine(_cfg(tmp_path), progress=False, log=said.append)
    res = engine.train_classifier([0])[0]
    assert res.attempts is not None and len(res.attempts) == 2
    stashes = sorted(tmp_path.glob(f"fold0/classifier/**/{STASH_DIR}/*"))
    assert len(stashes) == 2  # one per candidate
    defective = sum(engine.data(0).train_all.labels)
    computed = count_label_heat_maps(monkeypatch)
    engine.pseudo_labels([0])
    assert computed == [] and any("are reused" in s for s in said)
    reused = _pngs(engine.pseudo_dir(0))
    assert sum(k.startswith("masks/") for k in reused) == len(engine.data(0).train_all)
    assert any(k.startswith("ignore/") for k in reused)  # the band rule's bands came along
    first = read_json(engine.pseudo_dir(0) / "manifest.json")
    # the same stage without the kept masks: every defective image's maps computed again
    shutil.rmtree(engine.pseudo_dir(0))
    for s in stashes:
        shutil.rmtree(s)
    again = Engine(_cfg(tmp_path), progress=False, log=said.append)
    computed.clear()
    again.pseudo_labels([0])
    assert len(computed) == defective > 0
    assert _pngs(again.pseudo_dir(0)).keys() == reused.keys()
    assert all(np.array_equal(v, _pngs(again.pseudo_dir(0))[k]) for k, v in reused.items())
    second = read_json(again.pseudo_dir(0) / "manifest.json")
    assert second["key"] == first["key"] and second["images"] == first["images"]


def test_masks_kept_under_another_key_are_not_taken(tmp_path) -> None:
    stash, out = tmp_path / "stash", tmp_path / "pseudo" / "racam-d50"
    (stash / "masks").mkdir(parents=True)
    (stash / "key.json").write_text('{"cam": {"delta": 10}}')
    (stash / "masks" / "a.png").write_bytes(b"png")
    assert not adopt_stash(stash, out, {"cam": {"delta": 50}})
    assert not out.with_name(out.name + ".partial").exists()
    assert adopt_stash(stash, out, {"cam": {"delta": 10}})
    work = out.with_name(out.name + ".partial")
    assert (work / "masks" / "a.png").read_bytes() == b"png"
    assert not adopt_stash(stash, out, {"cam": {"delta": 10}})  # started already: left alone
