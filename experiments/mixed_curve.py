"""The mixed-supervision curve of a run folder (issue 27, item 2): every weakly supervised
network of each fold, with the number of true masks it learned from, how they were chosen and
what the other defective images learned (``segmentation.train_masks``, ``train_masks_choice``,
``train_masks_rest``), its defect IoU on the fold's test images with a 95 % bootstrap interval,
its difference to the network without true masks, and each other choice minus ``random`` at the
same count (paired bootstrap over the test images, racam.evaluation.bootstrap). With several
folds, a pooled table follows over the settings every fold has (the folds' test images
together), and ``--plot`` draws the curve. It reads the stored ``result.json`` files only;
nothing is trained.

    python experiments/mixed_curve.py RUN --folds 0 1 2 --tag 0:-s2- \
        --full results/ksdd-cpu/reproduce.json --plot docs/figures/mixed-curve.png

``--tag F:TEXT`` keeps only fold F's networks whose folder name holds TEXT (e.g. the heat-map
scales of their pseudo-labels); ``--full`` adds the fully supervised UNet of a committed
reproduction (per-fold IoU, no per-image counts) as the last point. The networks are made with,
e.g., ``racam train-seg ksdd-cpu --fold 0 --out RUN --set segmentation.train_masks=5
--set segmentation.train_masks_choice=random --set segmentation.train_masks_rest=ignore``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from racam.evaluation.bootstrap import bootstrap_iou, paired_bootstrap_iou_difference

Key = tuple[int, str, str]
BASE: Key = (0, "-", "-")


def networks(run: Path, fold: int, tag: str = "") -> dict[Key, np.ndarray]:
    """``(count, choice, rest) -> per-image counts (S, N, 4)`` (images sorted by id) of the
    fold's weakly supervised UNets whose folder name holds ``tag``: ``S`` draws of the choice
    (``segmentation.train_masks_seed``, folders ``-draw<seed>``; the run's seed first), count
    0 the network without true masks."""
    found: dict[Key, list[tuple[int, np.ndarray]]] = {}
    for f in sorted((run / f"fold{fold}" / "segmentation").glob("unet-*/result.json")):
        r = json.loads(f.read_text())
        if (r.get("source") != "pseudo" or r.get("round", 0) or not r.get("per_image")
                or tag not in f.parent.name):
            continue
        tm = r.get("train_masks")
        rest = "ignore" if f.parent.name.endswith("-restignore") else "pseudo"
        key = BASE if tm is None else (int(tm["count"]), tm["choice"], rest)
        draw = re.search(r"-draw(\d+)", f.parent.name)
        counts = np.array([r["per_image"][i] for i in sorted(r["per_image"])])
        found.setdefault(key, []).append((-1 if draw is None else int(draw[1]), counts))
    return {k: np.stack([c for _, c in sorted(v, key=lambda t: t[0])])
            for k, v in found.items()}


def fmt(iv, sign: str = "") -> str:
    return (f"{100 * iv.estimate:{sign}.2f} [{100 * iv.low:{sign}.2f}, "
            f"{100 * iv.high:{sign}.2f}]")


def table(nets: dict[Key, np.ndarray], title: str) -> None:
    """Print one markdown table, then each choice minus ``random`` at the same count."""
    base = nets.get(BASE)
    print(f"\n{title}\n")
    print("| true masks | chosen | other defective images learn | defect IoU [95 %] "
          "| minus no true mask [95 %] |")
    print("| ---: | --- | --- | ---: | ---: |")
    for key in sorted(nets):
        n, choice, rest = key
        diff = "-" if base is None or n == 0 else (
            fmt(paired_bootstrap_iou_difference(*paired(nets[key], base)), "+"))
        draws = f" (mean of {len(nets[key])} draws)" if len(nets[key]) > 1 else ""
        print(f"| {n} | {choice}{draws} | {rest if n else 'pseudo-labels'} | "
              f"{fmt(bootstrap_iou(nets[key]))} | {diff} |")
    for (n, choice, rest), counts in sorted(nets.items()):
        other = nets.get((n, "random", rest))
        if n and choice != "random" and other is not None:
            print(f"{n} masks, rest {rest}: {choice} minus random "
                  f"{fmt(paired_bootstrap_iou_difference(*paired(counts, other)), '+')}")


def wide(per_fold: list[dict[Key, np.ndarray]], folds: list[int]) -> None:
    """One table: each setting's IoU per fold (its draws' mean) and, where every fold has it,
    pooled with its 95 % interval and its difference to no true mask."""
    curve = pooled(per_fold)
    keys = sorted(set().union(*per_fold))
    print("\n| true masks | chosen | rest | " + " | ".join(f"fold {f}" for f in folds)
          + " | pooled [95 %] | pooled minus no true mask [95 %] |")
    print("| ---: | --- | --- | " + " | ".join("---:" for _ in folds) + " | ---: | ---: |")
    for key in keys:
        n, choice, rest = key
        cells = [f"{100 * bootstrap_iou(nets[key], resamples=1).estimate:.2f}"
                 + (f" ({len(nets[key])})" if len(nets[key]) > 1 else "")
                 if key in nets else "-" for nets in per_fold]
        whole = fmt(bootstrap_iou(curve[key])) if key in curve else "-"
        diff = (fmt(paired_bootstrap_iou_difference(*paired(curve[key], curve[BASE])), "+")
                if key in curve and n and BASE in curve else "-")
        print(f"| {n} | {choice} | {rest if n else 'pseudo-labels'} | " + " | ".join(cells)
              + f" | {whole} | {diff} |")


def paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` (``(S, N, 4)``) with the one-draw side repeated to the other's draws:
    the difference is then ``IoU(a) - mean over draws of IoU(b)`` (or the reverse)."""
    s = max(len(a), len(b))
    return (np.repeat(a, s, 0) if len(a) == 1 else a[:s],
            np.repeat(b, s, 0) if len(b) == 1 else b[:s])


def pooled(per_fold: list[dict[Key, np.ndarray]]) -> dict[Key, np.ndarray]:
    """The settings every fold has, their folds' per-image counts concatenated (the draws
    every fold has)."""
    common = set.intersection(*(set(n) for n in per_fold))
    out = {}
    for k in sorted(common):
        s = min(len(n[k]) for n in per_fold)
        out[k] = np.concatenate([n[k][:s] for n in per_fold], axis=1)
    return out


def full_supervision(path: Path) -> tuple[float, list[float]]:
    """Pooled and per-fold IoU of the fully supervised UNet of a reproduction's JSON."""
    rows = json.loads(path.read_text())["table_iii"]
    row = next(r for r in rows if r["arch"] == "unet" and r["source"] == "true")
    return float(row["pooled"]["iou"]), [float(v) for v in row["fold_iou"]]


def plot(curve: dict[Key, np.ndarray], folds: list[dict[Key, np.ndarray]],
         full: tuple[float, list[float]] | None, path: Path) -> None:
    """Defect IoU against the number of true masks per fold: pooled (95 % intervals) per
    choice, each fold's ``random`` curve thin, the fully supervised network dashed."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    colors = {"random": "tab:blue", "ranked": "tab:red", "typical": "tab:green"}
    for choice, color in colors.items():
        keys = sorted(k for k in curve if k == BASE or (k[1] == choice and k[2] == "ignore"))
        if len(keys) < 2:
            continue
        ivs = [bootstrap_iou(curve[k]) for k in keys]
        xs = [k[0] for k in keys]
        ys = [100 * iv.estimate for iv in ivs]
        err = [[y - 100 * iv.low for y, iv in zip(ys, ivs)],
               [100 * iv.high - y for y, iv in zip(ys, ivs)]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=color,
                    label=f"{choice}, folds pooled")
    for k, nets in enumerate(folds):
        keys = sorted(n for n in nets if n == BASE or n[1:] == ("random", "ignore"))
        ys = [100 * bootstrap_iou(nets[n], resamples=1).estimate for n in keys]
        ax.plot([n[0] for n in keys], ys, color="tab:blue", alpha=0.3, lw=1,
                label="random, one fold" if k == 0 else None)
    if full is not None:
        ax.axhline(100 * full[0], ls="--", color="gray", label="all masks (fully supervised)")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xticks([0, 1, 2, 5, 10])
    ax.set_xticklabels(["0", "1", "2", "5", "10"])
    ax.set_xlabel("true masks per fold (the other defective images: ignored)")
    ax.set_ylabel("defect IoU on the test images (%)")
    ax.set_title("KolektorSDD, weakly supervised UNet with a few true masks")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def compare(mine: list[dict[Key, np.ndarray]], others: list[dict[Key, np.ndarray]],
            folds: list[int], other: Path) -> None:
    """Each setting both runs have, per fold and pooled over the folds that have it:
    ``other``'s network minus this run's (paired over the test images; the draws both have,
    the run's seed first)."""
    print(f"\n{other} minus this run (same settings, paired over the test images)\n")
    keys = sorted(set().union(*(set(a) & set(b) for a, b in zip(mine, others))))
    for key in keys:
        pairs = [(f, b[key][:n], a[key][:n]) for f, a, b in zip(folds, mine, others)
                 if key in a and key in b for n in [min(len(a[key]), len(b[key]))]]
        for f, b, a in pairs:
            print(f"{key} fold {f}: {fmt(paired_bootstrap_iou_difference(b, a), '+')}")
        if len(pairs) > 1:
            s = min(len(a) for _, _, a in pairs)
            b_all = np.concatenate([b[:s] for _, b, _ in pairs], axis=1)
            a_all = np.concatenate([a[:s] for _, _, a in pairs], axis=1)
            print(f"{key} folds pooled: "
                  f"{fmt(paired_bootstrap_iou_difference(b_all, a_all), '+')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--folds", type=int, nargs="+", default=[0])
    ap.add_argument("--tag", action="append", default=[], help="F:TEXT (see the docstring)")
    ap.add_argument("--full", type=Path, help="a reproduce.json with the fully supervised UNet")
    ap.add_argument("--plot", type=Path, help="where to write the curve (PNG)")
    ap.add_argument("--wide", action="store_true", help="one table, a column per fold")
    ap.add_argument("--against", type=Path,
                    help="another run folder: its networks minus this run's, same settings")
    args = ap.parse_args()
    tags = {int(t.split(":", 1)[0]): t.split(":", 1)[1] for t in args.tag}
    per_fold = [networks(args.run, f, tags.get(f, "")) for f in args.folds]
    for f, nets in zip(args.folds, per_fold):
        table(nets, f"Fold {f}")
    full = full_supervision(args.full) if args.full else None
    if full is not None:
        print(f"\nAll masks (fully supervised, {args.full}): pooled {100 * full[0]:.2f}, "
              "folds " + " / ".join(f"{100 * v:.2f}" for v in full[1]))
    curve = pooled(per_fold) if len(per_fold) > 1 else per_fold[0]
    if len(per_fold) > 1:
        table(curve, "Folds " + ", ".join(map(str, args.folds)) + " pooled")
    if args.wide:
        wide(per_fold, args.folds)
    if args.against:
        others = [networks(args.against, f, tags.get(f, "")) for f in args.folds]
        compare(per_fold, others, args.folds, args.against)
    if args.plot:
        plot(curve, per_fold, full, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
