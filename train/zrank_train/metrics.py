"""Ranking and classification metrics (numpy)."""

from __future__ import annotations

import numpy as np


def ndcg_at(scores, gains, k: int = 10) -> float | None:
    """NDCG@k of ranking `gains` by `scores` (descending; ties keep the given order). None when no gain > 0."""
    g = np.asarray(gains, dtype=np.float64)
    if not np.any(g > 0):
        return None
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(np.sum(g[order] * disc[:len(order)]))
    ideal = np.sort(g)[::-1][:k]
    return dcg / float(np.sum(ideal * disc[:len(ideal)]))


def auc(scores, labels) -> float | None:
    """ROC AUC (Mann-Whitney, ties counted half). None with one class only."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    npos, nneg = int(y.sum()), int((~y).sum())
    if npos == 0 or nneg == 0:
        return None
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))
