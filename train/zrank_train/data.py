"""Catalog, click log and truth files; impression lists; the by-query validation split."""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field

from .errors import InputError


def _lines(path: str, what: str):
    """Yields (line number, parsed object) of a JSON-lines file; blank lines skipped; InputError for an unreadable
    file or bad lines (all bad line numbers, the first few shown)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"{path}: cannot read the {what}: {e.strerror or e}") from None
    bad: list[tuple[int, str]] = []
    out = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip(b" \t\r"):
            continue
        try:
            o = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append((n, "invalid UTF-8"))
            continue
        except ValueError:
            bad.append((n, "not JSON"))
            continue
        if not isinstance(o, dict):
            bad.append((n, "not a JSON object"))
            continue
        out.append((n, o))
    if bad:
        shown = ", ".join(f"line {n} ({why})" for n, why in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise InputError(f"{path}: bad JSON lines in the {what}: {shown}{more}")
    return out


class _Bad:
    """Collects field errors with their line numbers; raises one InputError."""

    def __init__(self, path, what):
        self.path, self.what, self.items = path, what, []

    def add(self, n, why):
        self.items.append((n, why))

    def raise_if_any(self):
        if self.items:
            shown = "; ".join(f"line {n}: {why}" for n, why in self.items[:5])
            more = f" (and {len(self.items) - 5} more bad lines)" if len(self.items) > 5 else ""
            raise InputError(f"{self.path}: bad {self.what} lines: {shown}{more}")


def item_text(o: dict) -> str:
    """The text embedded for a catalog item, as the Swift index builder does: the title, then a space and the
    text when "text" is a string."""
    t = o.get("text")
    return f"{o['title']} {t}" if isinstance(t, str) else o["title"]


def read_catalog(path: str) -> dict[str, str]:
    items: dict[str, str] = {}
    bad = _Bad(path, "catalog")
    for n, o in _lines(path, "catalog"):
        i = o.get("id")
        if not isinstance(i, str) or not i:
            bad.add(n, 'missing string "id"')
        elif not isinstance(o.get("title"), str):
            bad.add(n, 'missing string "title"')
        elif i in items:
            bad.add(n, f'duplicated id "{i}"')
        else:
            items[i] = item_text(o)
    bad.raise_if_any()
    if not items:
        raise InputError(f"{path}: the catalog has no items")
    return items


@dataclass
class Impression:
    query: str
    item: str
    user: str
    position: int | None
    clicked: bool
    dwell: float | None


def read_log(path: str) -> list[Impression]:
    rows = []
    bad = _Bad(path, "log")
    for n, o in _lines(path, "log"):
        q, item, clicked = o.get("query"), o.get("item"), o.get("clicked")
        if not isinstance(q, str) or not q.strip():
            bad.add(n, 'missing or empty string "query"')
            continue
        if not isinstance(item, str) or not item:
            bad.add(n, 'missing string "item"')
            continue
        if not isinstance(clicked, bool):
            bad.add(n, 'missing boolean "clicked"')
            continue
        user = ""
        u = o.get("user")
        if u is not None:
            if not isinstance(u, dict):
                bad.add(n, '"user" must be an object')
                continue
            user = u.get("id") if isinstance(u.get("id"), str) else ""
        p = o.get("position")
        if p is not None and (isinstance(p, bool) or not isinstance(p, int) or p < 1):
            bad.add(n, '"position" must be an integer >= 1')
            continue
        d = o.get("dwell_s")
        if d is not None and (isinstance(d, bool) or not isinstance(d, (int, float)) or not math.isfinite(d) or d < 0):
            bad.add(n, '"dwell_s" must be a non-negative number')
            continue
        rows.append(Impression(q, item, user, p, clicked, None if d is None else float(d)))
    bad.raise_if_any()
    if not rows:
        raise InputError(f"{path}: the log has no impressions")
    return rows


def read_truth(path: str) -> dict[tuple[str, str], float]:
    truth = {}
    bad = _Bad(path, "truth")
    for n, o in _lines(path, "truth"):
        q, i, g = o.get("query"), o.get("item"), o.get("grade")
        if not isinstance(q, str) or not isinstance(i, str) or isinstance(g, bool) or not isinstance(g, (int, float)):
            bad.add(n, 'expected {"query": str, "item": str, "grade": number}')
            continue
        truth[(q, i)] = float(g)
    bad.raise_if_any()
    return truth


@dataclass
class Session:
    """One impression list: the items shown together for one (user id, query), in position order."""
    query: str
    user: str
    items: list[str] = field(default_factory=list)
    positions: list[int | None] = field(default_factory=list)
    clicked: list[bool] = field(default_factory=list)
    dwell: list[float | None] = field(default_factory=list)

    @property
    def clicks(self) -> int:
        return sum(self.clicked)


def sessions_of(rows: list[Impression], cap: int) -> tuple[list[Session], int]:
    """Groups impressions by (user id or "", query), in log order. A group is split into several impression lists
    when a position repeats within it (the same user issuing the same query again). Each list is sorted by position
    (impressions without a position keep log order, after those with one) and capped at `cap` items (the top
    positions are kept). Returns the lists and how many impressions the cap dropped."""
    groups: "OrderedDict[tuple[str, str], list[list[Impression]]]" = OrderedDict()
    seen: dict[tuple[str, str], set] = {}
    for r in rows:
        key = (r.user, r.query)
        if key not in groups:
            groups[key] = [[]]
            seen[key] = set()
        if r.position is not None and r.position in seen[key]:
            groups[key].append([])
            seen[key] = set()
        if r.position is not None:
            seen[key].add(r.position)
        groups[key][-1].append(r)
    out, dropped = [], 0
    for (user, query), lists in groups.items():
        for lst in lists:
            lst = sorted(lst, key=lambda r: (r.position is None, r.position or 0))
            dropped += max(0, len(lst) - cap)
            s = Session(query, user)
            for r in lst[:cap]:
                s.items.append(r.item)
                s.positions.append(r.position)
                s.clicked.append(r.clicked)
                s.dwell.append(r.dwell)
            out.append(s)
    return out, dropped


def query_unit(query: str, seed: int) -> float:
    h = hashlib.blake2b(f"{seed}\0{query}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


def validation_queries(queries, validation: float, seed: int) -> set[str]:
    """The held-out queries: those whose seeded hash falls under `validation`. With at least two queries and
    validation > 0, each side gets at least one query."""
    if validation <= 0:
        return set()
    queries = sorted(set(queries))
    u = {q: query_unit(q, seed) for q in queries}
    val = {q for q in queries if u[q] < validation}
    if len(queries) >= 2:
        if not val:
            val = {min(queries, key=lambda q: u[q])}
        if len(val) == len(queries):
            val.discard(max(queries, key=lambda q: u[q]))
    return val


def split_by_query(sessions: list[Session], validation: float, seed: int) -> tuple[list[Session], list[Session]]:
    """Validation = the sessions of the validation queries (a query is never in both)."""
    val = validation_queries({s.query for s in sessions}, validation, seed)
    return [s for s in sessions if s.query not in val], [s for s in sessions if s.query in val]


def evaluation_lists(rows: list[Impression]) -> list[Session]:
    """The lists the validation figures are computed on: one per (user id or "", query), holding every impression
    of that pair in log line order, uncapped (so NDCG ties are broken by log order, as on the Swift side)."""
    groups: "OrderedDict[tuple[str, str], Session]" = OrderedDict()
    for r in rows:
        s = groups.get((r.user, r.query))
        if s is None:
            s = groups[(r.user, r.query)] = Session(r.query, r.user)
        s.items.append(r.item)
        s.positions.append(r.position)
        s.clicked.append(r.clicked)
        s.dwell.append(r.dwell)
    return list(groups.values())


def read_query_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return [q for q in f.read().split("\n") if q.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read the validation queries: {e}") from None
