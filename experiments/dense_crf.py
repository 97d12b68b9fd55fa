"""Dense CRF refinement of pseudo-labels (issue 25, item 1: "refinement with the image").

Scored on the defective TRAINING images of KolektorSDD folds (never a test fold), on the heat
maps that ``experiments/pseudo_levers.py`` cached (``RUNS/levers/fold<F>.npz``: the
``ksdd-cpu`` classifier's RA-CAM maps of each defective training image at several input
scales, with the image and its true mask). Baseline: ``ksdd-cpu``'s own rule, the mean of the
maps at scales 1, 1.5 and 2, the guided filter, bilinear resize to the original size, the
``otsu2`` cut. Each CRF variant starts from the same refined map at the input size
(256 x 704) and runs a fully connected CRF there (Kraehenbuehl and Koltun 2011, the
``pydensecrf`` implementation; the pairwise settings of DeepLab's and AffinityNet's CAM
refinement: Gaussian sxy 3 compat 3, bilateral sxy 80 srgb 13 compat 10, 10 mean-field steps;
and one narrow bilateral, sxy 10 srgb 10 compat 5, for thin defects); its label map is resized
to the original size (nearest).

- ``crf on the otsu2 mask``: the baseline's mask at input size as labels, 70 % sure;
- ``crf on the otsu2 trimap``: above the second Otsu threshold defect, below the first
  background (both 90 % sure), the band between them left to the CRF (uniform unary);
- ``otsu2 at input size`` (reference): the baseline's cut made before resizing, the CRF's grid.

``pydensecrf`` has no wheel on PyPI for Python 3.11: ``pip wheel pydensecrf2`` builds it
(C++, several minutes). Not a racam dependency.

    PYTHONPATH=src OMP_NUM_THREADS=1 RACAM_DATA=/work/shared/data \
      python experiments/dense_crf.py RUNS --fold 0 --fold 1 --fold 2
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from pseudo_levers import compute_maps, counts, table, to_mask, upsample_mask

from racam.config import load_config
from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference
from racam.pseudo.guided import guided_refiner
from racam.pseudo.otsu import otsu_threshold, pseudo_trimap

#: the maps averaged by ksdd-cpu's rule (cam.scales: [1, 1.5, 2])
SCALES = ("id", "s1.5", "s2")


def grey_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) normalised image as the (H, W, 3) uint8 picture the bilateral term reads."""
    g = image.mean(axis=0)
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-12)
    return np.ascontiguousarray(np.repeat((255 * g).astype(np.uint8)[..., None], 3, axis=2))


#: bilateral (sxy, srgb, compat): DeepLab's / AffinityNet's, and a narrow one for thin defects
WIDE, NARROW = (80, 13, 10), (10, 10, 5)


def crf(unary: np.ndarray, rgb: np.ndarray, bilateral: tuple[int, int, int] = WIDE,
        steps: int = 10) -> np.ndarray:
    """Label map (H, W) of a two-label fully connected CRF with ``unary`` (2, H*W) energies."""
    import pydensecrf.densecrf as dcrf

    h, w = rgb.shape[:2]
    d = dcrf.DenseCRF2D(w, h, 2)
    d.setUnaryEnergy(np.ascontiguousarray(unary.astype(np.float32)))
    d.addPairwiseGaussian(sxy=3, compat=3)
    sxy, srgb, compat = bilateral
    d.addPairwiseBilateral(sxy=sxy, srgb=srgb, rgbim=rgb, compat=compat)
    return np.argmax(np.array(d.inference(steps)), axis=0).reshape(h, w)


def crf_variants(heat: torch.Tensor, rgb: np.ndarray) -> dict[str, np.ndarray]:
    """The CRF masks (and the reference) of one refined map at the input size."""
    from pydensecrf.utils import unary_from_labels

    core, _ = pseudo_trimap(heat, "otsu2")
    mask = core.numpy()
    t1 = float(otsu_threshold(heat[None])[0])
    trimap = np.where(mask, 2, np.where(heat.numpy() <= t1, 1, 0)).astype(np.int64)
    return {
        "otsu2 at input size": mask,
        "crf on the otsu2 mask": crf(unary_from_labels(mask.astype(np.int64), 2, 0.7,
                                                       zero_unsure=False), rgb) == 1,
        "crf on the otsu2 trimap": crf(unary_from_labels(trimap, 2, 0.9), rgb) == 1,
        "crf on the otsu2 trimap, narrow bilateral": crf(unary_from_labels(trimap, 2, 0.9), rgb,
                                                         NARROW) == 1,
    }


def score_fold(data: dict[str, np.ndarray], overrides: dict) -> dict[str, np.ndarray]:
    """Per-image ``[tp, fp, fn]`` of the baseline and each CRF variant on one fold."""
    c = load_config("ksdd-cpu", overrides).cam
    guided = guided_refiner(c.guided_radius, c.guided_eps)
    images = torch.from_numpy(data["images"])
    out: dict[str, list[list[int]]] = {}
    for n, image_id in enumerate(data["ids"]):
        true = data[f"mask_{image_id}"]
        shape = (int(true.shape[0]), int(true.shape[1]))
        heat = torch.stack([torch.from_numpy(data[f"map_{v}"][n].astype(np.float32))
                            for v in SCALES]).mean(0)
        heat = guided(heat[None], images[n:n + 1])[0]
        out.setdefault("baseline", []).append(counts(to_mask(heat, shape, "otsu2"), true))
        for name, m in crf_variants(heat, grey_rgb(data["images"][n])).items():
            out.setdefault(name, []).append(
                counts(upsample_mask(torch.from_numpy(m), shape), true))
    return {k: np.array(v) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", type=Path, help="folder holding levers/fold<F>.npz")
    ap.add_argument("--fold", type=int, action="append", required=True)
    args = ap.parse_args()
    per_fold = {}
    for f in args.fold:
        per_fold[f] = score_fold(compute_maps("ksdd-cpu", {}, args.runs, f), {})
        print(f"fold {f}: {len(per_fold[f]['baseline'])} defective training images", flush=True)
    print("\n".join(table(per_fold)))
    for name in per_fold[args.fold[0]]:
        a = np.concatenate([per_fold[f][name] for f in args.fold])
        b = np.concatenate([per_fold[f]["baseline"] for f in args.fold])
        d = paired_bootstrap_iou_difference(a, b)
        tp, fp, fn = a.sum(0)
        print(f"folds pooled: {name} {100 * bootstrap_iou(a).estimate:.2f} (precision "
              f"{100 * tp / max(tp + fp, 1):.1f}, recall {100 * tp / max(tp + fn, 1):.1f}), "
              f"minus baseline {100 * d.estimate:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]")


if __name__ == "__main__":
    main()
