"""Which classifier epoch should decide good / defective in a folder run (issue 29)?

With ``classifier.keep_epoch: pseudo_area`` the kept epoch draws the heat maps and also decides
each image (the ``segmentation.gate``, ``predict``'s decision). ``best.pt`` is still the epoch of
the best validation AUROC. This script scores a finished folder run's segmentation on its test
images gated by each of the two (test AUROC of each, images emptied, gated defect IoU over all
and over the defective test images). Nothing here chooses a setting.

    OMP_NUM_THREADS=1 python experiments/gate_epoch.py folder-example \
        --set data.root=/work/datasets/ksdd-folder --set segmentation.train_masks=none \
        --out /work/runs/ksdd-folder-keep
"""

from __future__ import annotations

import json

import numpy as np
from run_args import finished_run, run_parser
from sklearn.metrics import roc_auc_score

from racam.classifier import load_classifier, predict_proba
from racam.evaluation.bootstrap import bootstrap_iou
from racam.evaluation.gate import gated_per_image
from racam.stages.folds import fold_datasets


def main() -> None:
    args = run_parser(__doc__).parse_args()
    cfg, clf, seg = finished_run(args)
    ids, labels = clf["test_ids"], np.array(clf["test_labels"])
    test = fold_datasets(cfg.data, args.fold, cfg.seed).test
    if [r.id for r in test.records] != ids:
        raise SystemExit("the run's test images differ from the config's")
    model, _ = load_classifier(args.out / f"fold{args.fold}" / "classifier" / "best.pt")
    deciders = {"kept epoch": np.array(clf["test_probs"]),
                "best.pt (AUROC epoch)": predict_proba(model.eval(), test, device="cpu").numpy()}
    defective = [k for k, y in zip(ids, labels) if y == 1]
    plain = np.array(list(seg["per_image"].values()))
    print(f"ungated: IoU over all test images {100 * bootstrap_iou(plain).estimate:.2f}")
    rows = {}
    for name, probs in deciders.items():
        gated = gated_per_image(seg["per_image"], ids, list(probs), cfg.classifier.threshold)
        assert gated is not None
        every = np.array(list(gated.per_image.values()))
        defect = np.array([gated.per_image[k] for k in defective])
        rows[name] = {"test_auroc": roc_auc_score(labels, probs),
                      "emptied": gated.emptied_images,
                      "iou_all": bootstrap_iou(every).estimate,
                      "iou_defective": bootstrap_iou(defect).estimate}
        r = rows[name]
        print(f"{name}: test AUROC {r['test_auroc']:.4f}, {r['emptied']} masks emptied, gated "
              f"IoU all {100 * r['iou_all']:.2f}, defective {100 * r['iou_defective']:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows))


if __name__ == "__main__":
    main()
