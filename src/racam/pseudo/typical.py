"""``segmentation.train_masks_choice: typical``: which ``N`` images to give a true mask, chosen
to be typical and diverse (TypiClust, Hacohen et al. 2022, "Active learning on a budget"):
for tiny budgets, images that represent dense regions of the data teach more than odd, hard
ones (the ``ranked`` choice lost to ``random`` on KolektorSDD, docs/results.md).

The images are points (embeddings, e.g. the classifier's pooled activations,
:func:`racam.classifier.embeddings.pooled_features`); k-means with ``k = N`` splits them into
``N`` clusters (diversity), and each cluster gives its most typical image: the one with the
lowest mean Euclidean distance to its ``min(20, n - 1)`` nearest neighbours among all ``n``
images (typicality = 1 / that distance; ties: the lower index). Clusters are visited largest
first (ties: the lower index of their pick), so the order is deterministic. No label and no
mask is read: the choice is a pure function of the points and the seed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["NEIGHBOURS", "N_INIT", "choose_typical", "typicality"]

#: Nearest neighbours whose mean distance measures an image's typicality (TypiClust's 20).
NEIGHBOURS = 20
#: k-means restarts (fixed: the choice must not change with scikit-learn's default).
N_INIT = 10


def _mean_knn_distance(points: np.ndarray) -> np.ndarray:
    """Each point's mean distance to its ``min(NEIGHBOURS, n - 1)`` nearest other points."""
    n = len(points)
    k = min(NEIGHBOURS, n - 1)
    if k < 1:
        return np.zeros(n)
    sq = (points * points).sum(axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * points @ points.T, 0.0)
    np.fill_diagonal(d2, np.inf)  # not its own neighbour
    nearest = np.sort(np.sqrt(d2), axis=1)[:, :k]
    return np.asarray(nearest.mean(axis=1))


def typicality(points: np.ndarray) -> np.ndarray:
    """``1 / mean distance`` to each point's ``min(20, n - 1)`` nearest neighbours among
    ``points`` (``(n, d)``); ``inf`` for a point whose neighbours all coincide with it."""
    with np.errstate(divide="ignore"):
        return 1.0 / _mean_knn_distance(np.asarray(points, dtype=np.float64))


def choose_typical(points: np.ndarray, n: int, *, seed: int,
                   labelled: Sequence[int] = ()) -> list[int]:
    """Indices (rows of ``points``, ``(count, d)``) of ``n`` typical and diverse points, in
    cluster order (largest cluster first): the most typical point of each of the ``n``
    clusters of k-means (``n_init`` :data:`N_INIT`, ``random_state=seed``). Every index
    (in order) when ``n >= count``. A cluster left empty (fewer distinct points than ``n``)
    is made up by the most typical points not yet chosen. With ``labelled`` (indices that
    have a mask already), a TypiClust round: ``n + len(labelled)`` clusters, the ``n``
    largest holding no labelled point give their most typical point; the labelled are never
    chosen."""
    from sklearn.cluster import KMeans

    x = np.asarray(points, dtype=np.float64)
    done = set(int(i) for i in labelled)
    free = [i for i in range(len(x)) if i not in done]
    if n >= len(free):
        return free
    if n < 1:
        return []
    spread = _mean_knn_distance(x)  # lower = more typical
    k = n + len(done)
    labels = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit(x).labels_
    picks = []  # (-cluster size, index of its most typical point)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if not done.intersection(members.tolist()):
            picks.append((-len(members), int(members[np.argmin(spread[members])])))
    chosen = [i for _, i in sorted(picks)][:n]
    rest = [int(i) for i in np.argsort(spread, kind="stable")
            if int(i) not in chosen and int(i) not in done]
    return chosen + rest[:n - len(chosen)]
