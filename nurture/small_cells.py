"""Small cells (docs/security.md, "Staff lookups and small cells"): how a count of people is shown to
staff. A count of 1 to 4 people shows as "<5" (MIN_CELL); one more cell of any row, column or total
holding a "<5" shows as "x" (`cells_to_hide`); every shown count is rounded to the nearest ROUND_TO.
Pure rules, no database: the results page (nurture/selectors/results.py, nurture/admin/results.py)
and the staff overview apply them."""
from __future__ import annotations

from collections import defaultdict

MIN_CELL = 5  # counts of 1..MIN_CELL-1 people are suppressed
SUPPRESSED = "<5"
HIDDEN = "x"  # a cell hidden so that a "<5" cannot be worked out from the others (secondary suppression)
ROUND_TO = 5  # every shown count is rounded to this


def rate(part: int, whole: int) -> float | None:
    """part / whole, or None when either count is too small to show (or nothing was sent)."""
    if whole < MIN_CELL or 0 < part < MIN_CELL:
        return None
    return part / whole


def cells_to_hide(counts: dict, lines: list[list], cost=None) -> tuple[set, set]:
    """(primary, secondary): the keys of `counts` shown as "<5" (1..4 people) and those hidden as "x"
    so that no line gives one away. A line is any set of cells a reader could add up: a row, a column,
    or a total with its parts. While some line holds exactly one hidden cell, one more of its non-zero
    cells is hidden: the one that leaves the fewest other lines with a single hidden cell (so hidden
    cells pair up instead of spreading), then the lowest `cost(key)` (what the page can best do
    without), then the smallest count, then the key (so every page hides the same cells)."""
    primary = {key for key, n in counts.items() if 0 < n < MIN_CELL}
    hidden = set(primary)
    lines_of: dict = defaultdict(list)
    for index, line in enumerate(lines):
        for key in line:
            lines_of[key].append(index)
    hidden_in = [sum(key in hidden for key in line) for line in lines]

    def score(key, line_index):
        new_singles = sum(1 for i in lines_of[key] if i != line_index and hidden_in[i] == 0)
        return (new_singles, cost(key) if cost else 0, counts[key], repr(key))

    changed = True
    while changed:
        changed = False
        for index, line in enumerate(lines):
            if hidden_in[index] != 1:
                continue
            others = [key for key in line if key not in hidden and counts.get(key, 0) > 0]
            if others:
                chosen = min(others, key=lambda key: score(key, index))
                hidden.add(chosen)
                for i in lines_of[chosen]:
                    hidden_in[i] += 1
                changed = True
    return primary, hidden - primary


def round_count(count: int) -> int:
    """To the nearest ROUND_TO (halves up): 5..7 -> 5, 8..12 -> 10."""
    return ROUND_TO * ((count + ROUND_TO // 2) // ROUND_TO)


def counts_shown(counts: dict, lines: list[list]) -> dict:
    """Each count of a table as shown: "<5", "x" (cells_to_hide over `lines`) or rounded."""
    primary, secondary = cells_to_hide(counts, lines)
    return {k: SUPPRESSED if k in primary else HIDDEN if k in secondary else round_count(n) for k, n in counts.items()}


def count_shown(count: int) -> int | str:
    """A count that stands alone (in no table whose other cells could give it away), as shown and
    exported: 0 stays 0, 1 to 4 people are "<5", the rest rounded like every other count."""
    return SUPPRESSED if 0 < count < MIN_CELL else round_count(count)
