"""A position-biased click log over the demo catalog from a hidden relevance rule (development/test data only; the
team's graded simulator replaces it).

Queries are "<modifier> <category>": the modifier is a colour (lexical: the item's title names it) or an intent
("outdoor", "cozy", "sleek") that stands for a set of materials (semantic: the base model only partly knows it).
Grade 2: the category and the modifier match; 1: the category only; 0: otherwise. The logged ranker orders the
shown items by grade plus noise; clicks = examination(position) * attraction(grade); dwell grows with the grade.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict

INTENTS = {
    "outdoor": {"wicker", "rattan", "resin", "metal", "stainless steel", "bamboo"},
    "cozy": {"velvet", "wool", "cotton", "linen", "polyester"},
    "sleek": {"glass", "marble", "acrylic", "chrome", "leather"},
}
ATTRACTION = {2: 0.85, 1: 0.25, 0: 0.03}


def examination(position: int) -> float:
    return (1.0 / position) ** 0.7


def grade(item: dict, category: str, modifier: str) -> int:
    if item["category"] != category:
        return 0
    if modifier in INTENTS:
        return 2 if item["material"] in INTENTS[modifier] else 1
    return 2 if item["color"] == modifier else 1


def generate(catalog_path: str, sessions: int, shown: int = 10, seed: int = 1, queries: int | None = None,
             users: int = 50):
    """Returns (log rows, truth rows {query, item, grade} for the shown items)."""
    rng = random.Random(seed)
    items = [json.loads(l) for l in open(catalog_path, encoding="utf-8") if l.strip()]
    by_cat = defaultdict(list)
    for it in items:
        by_cat[it["category"]].append(it)
    cats = sorted(c for c, v in by_cat.items() if len(v) >= 25)
    colours = sorted({it["color"] for it in items})
    mods = sorted(INTENTS) * 4 + colours  # intents are as frequent as all the colours together
    pool = []
    nq = queries or max(20, sessions // 2)
    seen = set()
    while len(pool) < nq:
        q = (rng.choice(mods), rng.choice(cats))
        if q not in seen:
            seen.add(q)
            pool.append(q)
    log, truth = [], {}
    for _ in range(sessions):
        mod, cat = rng.choice(pool)
        query = f"{mod} {cat.lower()}"
        user = f"u{rng.randrange(users) + 1}"
        incat = by_cat[cat]
        good = [it for it in incat if grade(it, cat, mod) == 2]
        picked = {it["id"]: it for it in rng.sample(good, min(3, len(good)))}
        for it in rng.sample(incat, min(len(incat), shown)):
            if len(picked) >= shown * 6 // 10:
                break
            picked.setdefault(it["id"], it)
        while len(picked) < shown:
            it = rng.choice(items)
            picked.setdefault(it["id"], it)
        shown_items = sorted(picked.values(), key=lambda it: -(grade(it, cat, mod) + rng.gauss(0, 1.2)))
        for p, it in enumerate(shown_items, start=1):
            g = grade(it, cat, mod)
            truth[(query, it["id"])] = g
            clicked = rng.random() < examination(p) * ATTRACTION[g]
            row = {"query": query, "item": it["id"], "user": {"id": user, "recent": []}, "position": p,
                   "clicked": clicked}
            if clicked:
                row["dwell_s"] = round(math.exp(2.0 + 0.6 * g + 0.4 * rng.gauss(0, 1)) - 1, 1)
            log.append(row)
    truth_rows = [{"query": q, "item": i, "grade": g} for (q, i), g in sorted(truth.items())]
    return log, truth_rows


def write(rows, path):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--sessions", type=int, required=True)
    ap.add_argument("--shown", type=int, default=10)
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--truth", default=None)
    a = ap.parse_args()
    log, truth = generate(a.catalog, a.sessions, a.shown, a.seed, a.queries)
    write(log, a.out)
    if a.truth:
        write(truth, a.truth)
