"""Run-report sections on supervision: which training images learned from their true mask
(``segmentation.train_masks``, :mod:`racam.pseudo.mixed`) and which to label next
(:mod:`racam.pseudo.ranking`)."""

from __future__ import annotations

from racam.pseudo.ranking import TYPICAL_FIRST
from racam.report.tables import md_table
from racam.stages.evaluate import RunResults

__all__ = ["deletion_section", "label_next_section", "segmentation_label",
           "train_masks_section"]


#: How each ``train_masks_choice`` picked its images (a line under the table).
CHOICES: dict[str, str] = {
    "random": "drawn at random (`segmentation.train_masks_seed`, else the run's seed, + the "
              "fold).",
    "ranked": "the top of the label-next list of the run with `train_masks: none`.",
    "typical": "the most typical image (closest to its nearest neighbours) of each of N "
               "k-means clusters of the classifier's pooled S5 features (no mask read).",
}


#: How the masks table names a ``segmentation.mask_cut`` other than ``half``.
CUT_LABELS = {"foreground_otsu": "mask at p > max(0.5, Otsu of p above 0.5)"}


def segmentation_label(arch: str, results: RunResults, cut: str = "half",
                       rounds: int = 0) -> str:
    """The segmentation row's name in the masks table (with its mask cut unless ``half``, and
    its ``segmentation.self_training`` rounds)."""
    how = f" ({CUT_LABELS[cut]})" if cut in CUT_LABELS else ""
    then = (f", then {rounds} round{'s' if rounds > 1 else ''} of self-training on its own "
            "masks" if rounds else "")
    if not results.train_masks:
        return f"{arch} on pseudo-labels{then}{how}, all test images"
    n = sum(len(t["ids"]) for t in results.train_masks.values())
    return f"{arch} on pseudo-labels + {n} true masks{then}{how}, all test images"


def train_masks_section(results: RunResults) -> list[str]:
    """Which training images of each fold learned from their true mask (none: no section)."""
    if not results.train_masks:
        return []
    lines = ["## True masks in training", "",
             "`segmentation.train_masks`: these defective training images learned from their "
             "true mask instead of their pseudo-label (every other training image from its "
             "pseudo-label; test images never give a mask). The pseudo-label row above scores "
             "the pseudo-labels alone.", ""]
    rows = [[k, t["setting"], t["choice"], f"{len(t['ids'])} of {t['eligible']}",
             ", ".join(f"`{i}`" for i in t["ids"]) or "-"]
            for k, t in sorted(results.train_masks.items())]
    used = sorted({t["choice"] for t in results.train_masks.values()} & CHOICES.keys())
    return lines + [md_table(["fold", "train_masks", "choice", "images (of those with a mask)",
                              "ids"], rows), ""] + [f"`{c}`: {CHOICES[c]}" for c in used] \
        + ([""] if used else [])


def label_next_section(results: RunResults) -> list[str]:
    """The top of each fold's label-next list (none computed: no section)."""
    if not results.label_next:
        return []
    lines = ["## Which defective images to outline next", "",
             f"Defective training images ranked from image labels alone. The first "
             f"{TYPICAL_FIRST} (`typical`) are the most typical images of the largest clusters "
             "of the classifier's features (what `segmentation.train_masks_choice: typical` "
             "takes): on KolektorSDD 5 such true masks per fold taught the segmentation "
             "network more than 5 drawn at random (docs/results.md). The others follow by how "
             "much the pseudo-label and the segmentation network's mask disagree (score = 1 - "
             "IoU of the two; the network of `train_masks: none`, or of this run without the "
             "images that learned their true mask): pseudo-labels worth a look. Full list: "
             "`fold<k>/label-next.csv`; masks you draw go in `masks/`. An image with the "
             "same pixels as a listed one is not listed again: its name is in the row's "
             "\"same pixels\" column, and one outline serves both.", ""]
    for k, rows in sorted(results.label_next.items()):
        lines += [f"Fold {k}:", "",
                  md_table(["rank", "image", "typical", "score", "classifier p", "pseudo px",
                            "network px", "same pixels"],
                           [[r["rank"], f"`{r['id']}`", r.get("typical_pick") or "-",
                             f"{r['score']:.3f}",
                             f"{r['classifier_prob']:.3f}", r["pseudo_pixels"],
                             r["network_pixels"],
                             ", ".join(f"`{c}`" for c in r.get("copies", "").split(";") if c)
                             or "-"] for r in rows]), ""]
    return lines


def deletion_section(results: RunResults) -> list[str]:
    """The label-free checks of each fold's pseudo-labels: deletion
    (:mod:`racam.pseudo.deletion`) and the network's agreement with them."""
    lines = _deletion_lines(results) + _agreement_lines(results)
    return ["## Pseudo-labels checked without masks", "", *lines] if lines else []


def _deletion_lines(results: RunResults) -> list[str]:
    if not results.pseudo_deletion:
        return []
    rows = [[k, d["images"], f"{100 * d['area']:.2f}", f"{d['p_image']:.3f}",
             f"{d['p_deleted']:.3f}", f"{d['p_random_box']:.3f}"]
            for k, d in sorted(results.pseudo_deletion.items())]
    return ["Each defective training image with its pseudo-label's pixels blurred away, and "
            "with a random box of the same area blurred away instead (`racam.pseudo.deletion`): "
            "masks that hold the defects leave the classifier little to call a defect, the box "
            "should not. A value that stays near the untouched one does not prove the labels "
            "wrong: a classifier may also rest on pixels outside them (on BSData one kept "
            "0.94 of 0.97 with labels of 40.9 IoU). Mean p(defect) of the classifier; no true "
            "mask is read.", "",
            md_table(["fold", "images", "pseudo-label area %", "p(defect) as is",
                      "pseudo-label deleted", "random box deleted"], rows), ""]


def _agreement_lines(results: RunResults) -> list[str]:
    if not results.network_agreement:
        return []
    values = ", ".join(f"fold {k} {100 * a:.1f} %"
                       for k, a in sorted(results.network_agreement.items()))
    return [f"The segmentation network's masks (p > 0.5, whatever `segmentation.mask_cut`) on "
            "the listed defective training images against "
            f"the pseudo-labels it learned there (pooled IoU; no true mask is read): {values}. "
            "A low value means the network could not learn the labels from the images: 27 % "
            "on DeepPCB, whose labels missed the defects, against 65-83 % on KolektorSDD and "
            "BSData (docs/results.md).", ""]
