"""The seeded stratified split of the validation hold-out and of a folder dataset's test split.

:func:`stratified_split` picks ``fraction`` of each class: ``round(fraction * n_c)`` images of a
class of ``n_c`` (Python rounding, half to even), at least one and at most ``n_c - 1`` when the
class has two or more images, none when ``fraction`` is 0. The draw is scikit-learn's
:class:`~sklearn.model_selection.StratifiedShuffleSplit`, asked for that total and seeded with
numpy's PCG64 stream of ``seed`` (the stream of ``numpy.random.default_rng(seed)``).

Compatibility: racam's earlier hand-written split shuffled each class (in label order) with
``numpy.random.default_rng(seed)`` and took the first ``round(fraction * n_c)``. Seeded as above,
StratifiedShuffleSplit permutes each class with the very same draws, so it picks the same images
whenever its proportional allocation of the total gives every class the count above without a
random tie-break. That holds for every built-in config on its dataset (KolektorSDD folds 0-2,
KolektorSDD2, the bundled sample; pinned by ``tests/test_data_registry.py``). Where it does not
(a class of one image, a small class the proportional allocation would leave without an image on
one side, shares such as 2.5 / 0.5 that scikit-learn breaks at random), :func:`per_class_split`
(the earlier algorithm) draws the counts class by class from the same stream. Every split is the
one earlier racam versions made, and the counts per class are always those above.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def class_quota(counts: np.ndarray, fraction: float) -> np.ndarray:
    """Images to pick from classes of ``counts`` images: ``round(fraction * n)``, clamped to
    ``[1, n - 1]`` for classes of two or more when ``fraction > 0``."""
    quota = np.array([int(round(fraction * n)) for n in counts], dtype=int)
    if fraction > 0:
        big = counts >= 2
        quota[big] = np.clip(quota[big], 1, counts[big] - 1)
    return quota


def per_class_split(labels: Sequence[int], fraction: float, seed: int
                    ) -> tuple[list[int], list[int]]:
    """The earlier algorithm: shuffle each class (label order) with ``default_rng(seed)`` and
    pick the first :func:`class_quota` of each. Returns ``(rest, picked)``, both sorted."""
    rng = np.random.default_rng(seed)
    y = np.asarray(labels)
    classes, counts = np.unique(y, return_counts=True)
    picked: list[int] = []
    for c, n in zip(classes, class_quota(counts, fraction), strict=True):
        idx = np.flatnonzero(y == c)
        rng.shuffle(idx)
        picked += idx[:n].tolist()
    return _complement(len(y), picked)


def _complement(n: int, picked: list[int]) -> tuple[list[int], list[int]]:
    chosen = set(picked)
    return [i for i in range(n) if i not in chosen], sorted(chosen)


def _tied_shares(counts: np.ndarray, total: int) -> bool:
    """Whether two classes have the same fractional part of their proportional share
    ``counts * total / counts.sum()`` (as 2.5 and 0.5): StratifiedShuffleSplit breaks such a tie
    with the seed's draws, which shifts the class permutations that follow. It allocates the
    picked images this way, then the rest (whose shares are whole numbers up to rounding)."""
    share = counts / counts.sum() * total  # the expression scikit-learn uses
    rem = share - np.floor(share)
    rem = rem[rem > 0]
    return len(np.unique(rem)) < len(rem)


def stratified_split(labels: Sequence[int], fraction: float, seed: int
                     ) -> tuple[list[int], list[int]]:
    """Split indices ``0 .. len(labels) - 1`` into ``(rest, picked)`` (both sorted), picking
    ``fraction`` of each class (see the module docstring for the counts and the seeding)."""
    from sklearn.model_selection import StratifiedShuffleSplit

    y = np.asarray(labels)
    if len(y) == 0:
        return [], []
    _, counts = np.unique(y, return_counts=True)
    quota = class_quota(counts, fraction)
    total = int(quota.sum())
    if total == 0:
        return list(range(len(y))), []
    if counts.min() >= 2 and not _tied_shares(counts, total) \
            and not _tied_shares(counts - quota, len(y) - total):
        random_state = np.random.RandomState(np.random.PCG64(seed))
        split = StratifiedShuffleSplit(n_splits=1, train_size=total, test_size=len(y) - total,
                                       random_state=random_state)
        picked, _ = next(split.split(np.zeros((len(y), 1)), y))
        if np.array_equal(np.unique(y[picked], return_counts=True)[1], quota):
            return _complement(len(y), picked.tolist())
    return per_class_split(labels, fraction, seed)


def grouped_split(labels: Sequence[int], groups: Sequence[str], fraction: float, seed: int
                  ) -> tuple[list[int], list[int]]:
    """:func:`stratified_split` where the indices of one group stay on one side (a folder's
    identical images): each group is drawn as one item with its first index's label. With every
    group a single index it is :func:`stratified_split` itself, so splits without such groups
    are the ones racam always made."""
    first: dict[str, int] = {}
    for i, g in enumerate(groups):
        first.setdefault(g, i)
    reps = list(first.values())
    if len(reps) == len(groups):
        return stratified_split(labels, fraction, seed)
    _, picked = stratified_split([labels[i] for i in reps], fraction, seed)
    chosen = {groups[reps[k]] for k in picked}
    return _complement(len(groups), [i for i, g in enumerate(groups) if g in chosen])
