"""The gate at ``classifier.threshold`` against the gate at the validation-chosen threshold
(``classifier.threshold_rule: val_f1``) on a finished run, without running it again.

Loads the fold's kept classifier, computes its probabilities on the fold's validation images,
chooses the threshold as the product does (:func:`racam.classifier.threshold.choose_threshold`),
and gates the stored segmentation per-image counts at both thresholds. Prints, for each: test
images emptied, defective test images emptied, test accuracy, gated IoU over all test images,
and the paired bootstrap interval of the difference. Nothing here chooses a setting.

    OMP_NUM_THREADS=1 python experiments/gate_threshold.py folder-example \\
        --set data.root=/work/datasets/ksdd-folder-f1 --set segmentation.train_masks=none \\
        --set seed=1 --out /work/runs/ks-f1-s1
"""

from __future__ import annotations

import json

import numpy as np
from run_args import finished_run, run_parser

from racam.classifier import load_classifier, predict_proba
from racam.classifier.threshold import choose_threshold
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.evaluation.gate import gated_per_image
from racam.stages.folds import fold_datasets


def main() -> None:
    args = run_parser(__doc__).parse_args()
    cfg, clf, seg = finished_run(args)
    ids, labels, probs = clf["test_ids"], clf["test_labels"], clf["test_probs"]
    data = fold_datasets(cfg.data, args.fold, cfg.seed)
    if [r.id for r in data.test.records] != ids:
        raise SystemExit("the run's test images differ from the config's")
    model, _ = load_classifier(clf["checkpoint"])
    val_probs = predict_proba(model.eval(), data.val, device="cpu").tolist()
    choice = choose_threshold(list(data.val.labels), val_probs, cfg.classifier.threshold)
    print(f"validation: {choice.images} images, {choice.defective} defective; F1 "
          f"{choice.f1_fixed:.3f} at {cfg.classifier.threshold:g}, {choice.f1:.3f} at "
          f"{choice.threshold:.4g}")
    order = list(seg["per_image"])
    counts = {}
    for name, t in (("fixed", cfg.classifier.threshold), ("val_f1", choice.threshold)):
        g = gated_per_image(seg["per_image"], ids, probs, t)
        assert g is not None
        counts[name] = np.array([g.per_image[k] for k in order])
        emptied_def = sum(p < t for p, y in zip(probs, labels) if y == 1)
        acc = np.mean([(p >= t) == bool(y) for p, y in zip(probs, labels)])
        print(f"{name:7s} threshold {t:.4g}: {g.emptied_images} test images emptied "
              f"({emptied_def} defective), test accuracy {acc:.3f}, gated IoU all test "
              f"{100 * bootstrap_iou(counts[name]).estimate:.2f}")
    d = paired_bootstrap_iou_difference(counts["val_f1"], counts["fixed"])
    print(f"val_f1 minus fixed: {100 * d.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]")
    if args.json:
        args.json.write_text(json.dumps({"choice": choice.to_json(),
                                         "difference": [d.estimate, d.low, d.high]}))


if __name__ == "__main__":
    main()
