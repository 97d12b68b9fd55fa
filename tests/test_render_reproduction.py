"""`racam reproduce CONFIG --out DIR --render-only` (:func:`racam.paper.report.render_folder`)
on a `ksdd-paper`-shaped reproduction whose fully supervised networks found no defect pixel (IoU 0)
and whose figures and records are partly missing: the report renders, says `n/a` and why, and
links only figure files that exist. A folder without a readable record: one line, exit 2."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import racam

from racam.config import load_config
from racam.errors import DataError
from racam.paper.report import render_folder

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "results" / "ksdd-cpu" / "reproduce.json"  # a real reproduce.json's shape


def _zero_view() -> dict:
    # a network that predicted no defect pixel: IoU 0, precision and F1 undefined
    return {"iou": 0.0, "precision": None, "recall": 0.0, "f1": None, "miou": 0.4912,
            "iou_background": 0.9824}


@pytest.fixture
def paper_run(tmp_path: Path) -> Path:
    res = json.loads(TEMPLATE.read_text())
    res["table_iii"] = [{"arch": a, "source": "true", "pooled": _zero_view(),
                         "fold_iou": [0.0, 0.0, 0.0], "seed": 0}
                        for a in ("unet", "deeplabv3", "deeplabv3plus")]
    res["table_iii"].append({"arch": "deeplabv3", "source": "pseudo",
                             "pooled": {**_zero_view(), "iou": 0.0412, "precision": 0.1},
                             "fold_iou": [0.03, None, 0.05], "seed": 0})
    # fig1: never produced; fig4_5: recorded on another machine, file gone; fig8_9: recorded
    # elsewhere but copied next to the report (as results/ksdd-cpu/ holds its figures)
    res["figures"] = {"fig4_5": "/gone/figures/fig4_5_methods.png",
                      "fig8_9": "/elsewhere/figures/fig8_9_delta.png"}
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "fig8_9_delta.png").write_bytes(b"\x89PNG")
    res["classifier_per_seed"]["1"]["2"]["test_auroc"] = None  # one class: undefined
    del res["classifier_per_seed"]["2"]["0"]["seconds"]
    res["classifier_per_seed"]["2"]["1"] = None
    res["classifier_per_seed"]["0"]["2"].update(diverged_at=20, best_epoch=4)
    res["classifier_per_seed"]["0"]["1"]["restarted"] = True
    res["classifier_per_seed"]["1"]["0"]["candidates"] = [
        {"seed": 1, "pseudo_area": 0.0197, "chosen": False},
        {"seed": 1001, "pseudo_area": 0.0068, "chosen": True}]
    for key in ("stage_seconds", "wall_seconds_this_call", "machine"):
        del res[key]
    res["delta_sweep"]["rows"][1]["test"] = None
    (tmp_path / "reproduce.json").write_text(json.dumps(res))
    (tmp_path / "config.json").write_text(json.dumps(load_config("ksdd-paper").to_dict()))
    return tmp_path




def test_paper_report_renders_with_zero_and_missing_figures(paper_run: Path) -> None:
    code, out, err = racam("reproduce", "ksdd-paper", "--out", paper_run, "--render-only")
    assert code == 0, err
    assert out.strip() == f"report: {paper_run / 'report.md'}"
    assert sorted(p.name for p in paper_run.iterdir()) == [
        "config.json", "figures", "report.html", "report.md", "reproduce.json"]  # nothing run
    text = (paper_run / "report.md").read_text()
    assert (paper_run / "report.html").stat().st_size > 0
    assert "# racam reproduction: ksdd-paper" in text
    assert "Classifier `vgg16`, " in text  # full VGG16: classifier.width does not apply
    for bad in ("nan", "None", "Traceback", "inf%"):
        assert bad not in text.split("## Config")[0], bad
    # IoU 0 of every fully supervised network: shown as 0.00, no ratio divided by it
    table = text.split("## Table III")[1].split("\n## ")[0]
    assert table.count("| FS (true masks) | 0.00 |") == 3
    assert "No fully supervised network found a single true defect pixel" in text
    assert "% of the best fully supervised" not in text
    # figures: the copied one linked relative to the report, the others n/a with the reason
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", text)
    assert links == ["figures/fig8_9_delta.png"]
    assert all((paper_run / link).is_file() for link in links)
    assert "(figure n/a: this run produced none" in text  # fig1
    assert "(figure n/a: `fig4_5_methods.png` was not found" in text
    # classifier: an undefined AUROC is n/a, an unrecorded number or seed-fold is -
    clf = text.split("## Classifier")[1].split("\n## ")[0]
    assert "| 1 | 2 | n/a |" in clf and "| 2 | 1 | - | - | - | - |" in clf
    assert "- Seed 0, fold 2: training diverged at epoch 20 (mean loss not finite) and " \
        "stopped; the kept epoch 4 is from before" in clf
    assert "- Seed 0, fold 1: the first training stayed below the validation AUROC floor" in clf
    assert "- Seed 1, fold 0: of 2 classifiers passing the validation floor, the one whose " \
        "pseudo-labels mark the least of the defective training images was kept " \
        "(`classifier.candidates`; seed 1: 1.97 %, seed 1001: 0.68 % (kept))." in clf
    assert clf.count("- Seed") == 3
    assert "Wall time of the `racam reproduce` call that wrote this report: n/a (not recorded" \
        in text
    assert "## Machine\n\nn/a (not recorded in `reproduce.json`)." in text
    assert "`n/a` one that is undefined" in text
    # the config the reproduction ran with, with the delta it chose on training images
    shown = json.loads(text.split("## Config")[1].split("```json")[1].split("```")[0])
    assert shown["name"] == "ksdd-paper" and shown["cam"]["delta"] == 70 != \
        load_config("ksdd-paper").cam.delta


def test_render_folder_rewrites_the_report_from_the_record_alone(paper_run: Path) -> None:
    (paper_run / "report.md").write_text("an older wording\n")
    assert render_folder(paper_run) == paper_run / "report.md"
    first = (paper_run / "report.md").read_text()
    assert first.startswith("# racam reproduction: ksdd-paper") and "older wording" not in first
    # rendered again: the same text (no number recomputed, nothing depends on the call)
    render_folder(paper_run)
    assert (paper_run / "report.md").read_text() == first
    html = (paper_run / "report.html").read_text()
    assert "<title>racam reproduce: ksdd-paper</title>" in html and "<table>" in html


def test_a_folder_without_a_readable_record_is_named(paper_run: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = racam("reproduce", "ksdd-paper", "--out", empty, "--render-only")
    lines = [ln for ln in err.splitlines() if ln.startswith("error: ")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(empty / "reproduce.json") in lines[0]
    assert list(empty.iterdir()) == []
    (paper_run / "reproduce.json").write_text('{"seeds": [0, ')  # cut short
    with pytest.raises(DataError, match=re.escape(str(paper_run / "reproduce.json"))):
        render_folder(paper_run)
    (paper_run / "reproduce.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object"):
        render_folder(paper_run)
    assert not (paper_run / "report.md").exists()


def test_typed_results_hold_every_figure_of_a_stored_record() -> None:
    from racam.paper.results import ReproductionResults

    raw = json.loads(TEMPLATE.read_text())
    res = ReproductionResults.from_dict(raw)
    assert res.seeds == raw["seeds"] and res.chosen_delta == raw["chosen_delta"]
    for part in ("table_i", "table_iv", "racam_variants"):
        typed = getattr(res, part)
        assert [(r.method, r.delta, r.iou, r.fold_iou, r.variant) for r in typed] == [
            (r["method"], r["delta"], r["paper_view"]["iou"], r["fold_iou"], r.get("variant", ""))
            for r in raw[part]]
    for typed, r in zip(res.table_iii, raw["table_iii"], strict=True):
        assert (typed.name, typed.iou, typed.interval, typed.seeds) == (
            f"{r['arch']}-{r['source']}", r["pooled"]["iou"], r["interval"], r["seeds"])
        diff, got = r.get("minus_supervised"), typed.minus_supervised
        if diff is None:
            assert got is None
        else:
            assert got is not None and (got.b, got.interval) == (diff["b"], diff["interval"])
    with_interval = [r for r in raw["bootstrap"]["rows"] if r["interval"]]
    assert len(res.comparisons.intervals) == len(with_interval) > 0
    assert all(res.comparisons.get(r["a"], r["b"]) == r["interval"] for r in with_interval)
    assert [(r.delta, r.train, r.test) for r in res.delta_sweep] == [
        (r["delta"], r["train"], r["test"]) for r in raw["delta_sweep"]["rows"]]
    assert res.classifiers(0) == raw["classifier_per_seed"]
    # a record of one seed only (older reproduce.json): its classifiers under the first seed
    old = ReproductionResults.from_dict({"classifier": raw["classifier"]})
    assert old.classifiers(7) == {"7": raw["classifier"]} and old.table_iii == []


def test_a_scope_not_computed_is_explained_in_the_report(paper_run: Path) -> None:
    """A record whose reproduction skipped ``fgbp_head: unit`` (its ``notes``): the RA-CAM
    section prints the note and has no unit row."""
    res = json.loads((paper_run / "reproduce.json").read_text())
    res["racam_variants"] = [r for r in res["racam_variants"] if "unit" not in r["variant"]]
    note = "`fgbp_head` unit not computed: no activation on a fully connected output."
    res["notes"] = {"fgbp_head": note}
    (paper_run / "reproduce.json").write_text(json.dumps(res))
    text = (render_folder(paper_run)).read_text()
    section = text.split("## RA-CAM: the two readings")[1].split("\n## ")[0]
    assert note in section and "fgbp_head=unit" not in section
    assert "weighting=channel, fgbp_head=sample" in section
