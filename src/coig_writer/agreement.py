"""Inter-annotator agreement: Cohen's kappa (two annotators) and Krippendorff's alpha
(nominal; any number of annotators, missing values allowed)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from itertools import permutations


def cohen_kappa(a: Sequence[Hashable], b: Sequence[Hashable]) -> float:
    """Cohen's kappa between two labelings of the same items."""
    if len(a) != len(b) or not a:
        raise ValueError("need two equally long, non-empty label lists")
    n = len(a)
    ca, cb = Counter(a), Counter(b)
    po = sum(x == y for x, y in zip(a, b, strict=True)) / n
    pe = sum(ca[c] * cb[c] for c in set(ca) | set(cb)) / (n * n)
    return 1.0 if pe == 1 else (po - pe) / (1 - pe)


def krippendorff_alpha(units: Mapping[Hashable, Sequence[Hashable]]) -> float | None:
    """Nominal Krippendorff's alpha from unit -> labels given by its annotators (units with
    fewer than two labels are not pairable and are ignored). None when nothing is pairable."""
    o: dict[tuple[Hashable, Hashable], float] = defaultdict(float)
    for labels in units.values():
        m = len(labels)
        if m < 2:
            continue
        for x, y in permutations(labels, 2):
            o[(x, y)] += 1 / (m - 1)
    if not o:
        return None
    n_c: dict[Hashable, float] = defaultdict(float)
    for (x, _), v in o.items():
        n_c[x] += v
    n = sum(n_c.values())
    disagree = sum(v for (x, y), v in o.items() if x != y)
    expected = sum(n_c[x] * n_c[y] for x in n_c for y in n_c if x != y)
    if expected == 0:
        return 1.0
    return 1 - (n - 1) * disagree / expected
