"""Group-aware train/validation/test splits: a conversation (or, when grouped so, a customer)
never lands in two splits, so a model is never tested on a dialogue it trained on.

Fractions apply to groups, not examples. The split is scikit-learn's
:class:`~sklearn.model_selection.GroupShuffleSplit`, run twice (test off the whole, then
validation off the rest) with counts rounded so they add up to the number of groups, and a
seeded ``RandomState``: the same groups and seed give the same assignment on every machine.
Groups are sorted first, so the order the lake returns them in does not matter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import GroupShuffleSplit

from hooklake.datasets.recipe import SPLITS

#: ``SPLITS[code]`` is the split name of a code returned by :func:`assign_splits`.
TRAIN, VALIDATION, TEST = 0, 1, 2


def split_counts(n: int, fractions: Mapping[str, float]) -> tuple[int, ...]:
    """Group counts per split (in :data:`SPLITS` order) that add up to ``n``: floors first,
    the remainder to the largest fractional parts (ties to the earlier split)."""
    exact = [n * fractions.get(name, 0.0) for name in SPLITS]
    counts = [math.floor(x + 1e-9) for x in exact]
    order = sorted(range(len(SPLITS)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return tuple(counts)


def _take(
    groups: npt.NDArray[Any], pool: npt.NDArray[np.intp], count: int, seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Split the rows ``pool`` into (kept, taken) with ``count`` whole groups taken."""
    n_groups = len(np.unique(groups[pool])) if len(pool) else 0
    if count == 0 or n_groups == 0:
        return pool, pool[:0]
    if count >= n_groups:
        return pool[:0], pool
    splitter = GroupShuffleSplit(
        n_splits=1, test_size=count, train_size=n_groups - count, random_state=seed
    )
    kept, taken = next(splitter.split(pool, groups=groups[pool]))
    return pool[kept], pool[taken]


def assign_splits(
    groups: npt.ArrayLike, fractions: Mapping[str, float], seed: int
) -> npt.NDArray[np.int8]:
    """A split code (:data:`TRAIN`, :data:`VALIDATION`, :data:`TEST`) for every entry of
    ``groups`` (strings or integers; a build passes integer ranks to save memory); equal
    group ids always get the same code."""
    keys = np.asarray(groups)
    codes = np.zeros(len(keys), dtype=np.int8)
    if not len(keys):
        return codes
    # Sort so that the assignment depends on the set of groups, not on the order they came in.
    unique, inverse = np.unique(keys, return_inverse=True)
    _, n_validation, n_test = split_counts(len(unique), fractions)
    rest, test = _take(unique, np.arange(len(unique)), n_test, seed)
    _, validation = _take(unique, rest, n_validation, seed + 1)
    group_codes = np.zeros(len(unique), dtype=np.int8)
    group_codes[validation] = VALIDATION
    group_codes[test] = TEST
    codes[:] = group_codes[inverse]
    return codes
