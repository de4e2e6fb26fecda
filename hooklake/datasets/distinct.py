"""Compact sets of what a build remembers from its first batch to its last: the digests of the
examples kept so far (:mod:`.dedupe`) and the split groups seen (the card's group counts).

These are the only parts of a build's memory that grow with the lake. As Python sets they cost
60-100 bytes per member (the ``int`` or ``str`` object and its slot): 20-30 MB at 4M simulated
messages (237k examples, 179k groups), growing by as much again with every 4M messages more.
Here a digest costs 8 bytes, in sorted numpy arrays, and a group the bytes of its name plus an
8-byte offset, in an Arrow array.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from hooklake.datasets.recipe import SPLITS


class DigestSet:
    """Distinct 64-bit digests, in sorted runs that never share a value. A new run merges with
    the one before it while that one is at most twice its size, so there are about log2(n)
    runs, and each digest is copied about log2(n) times over a build."""

    def __init__(self, digests: Iterable[int] | np.ndarray = ()) -> None:
        self._runs: list[np.ndarray] = []
        values = np.unique(_uint64(digests))
        if len(values):
            self._runs.append(values)

    def __len__(self) -> int:
        return sum(len(run) for run in self._runs)

    def __contains__(self, digest: int) -> bool:
        return bool(self._contains(_uint64([digest]))[0])

    def first_seen(self, digests: Sequence[int] | np.ndarray) -> np.ndarray:
        """For each of ``digests``, in order, whether it is new: neither in the set nor earlier
        in ``digests``. Adds the new ones."""
        d = _uint64(digests)
        fresh = np.zeros(len(d), dtype=bool)
        if not len(d):
            return fresh
        values, first = np.unique(d, return_index=True)
        new = ~self._contains(values)
        fresh[first[new]] = True
        self._add(values[new])
        return fresh

    def _contains(self, values: np.ndarray) -> np.ndarray:
        found = np.zeros(len(values), dtype=bool)
        for run in self._runs:
            at = np.searchsorted(run, values)
            inside = at < len(run)
            found[inside] |= run[at[inside]] == values[inside]
        return found

    def _add(self, values: np.ndarray) -> None:
        """Add sorted ``values``, none of them in the set."""
        if not len(values):
            return
        self._runs.append(values)
        while len(self._runs) > 1 and len(self._runs[-2]) <= 2 * len(self._runs[-1]):
            merged = np.concatenate([self._runs.pop(), self._runs.pop()])
            merged.sort()
            self._runs.append(merged)


def _uint64(digests: Iterable[int] | np.ndarray) -> np.ndarray:
    if isinstance(digests, np.ndarray):
        return digests.astype(np.uint64, copy=False)
    return np.fromiter(digests, dtype=np.uint64)


class StringSet:
    """Distinct strings, as one Arrow array of them, and arrays added since it was last made
    distinct; it is remade once the added ones outnumber it."""

    def __init__(self) -> None:
        self._distinct = pa.array([], pa.large_string())
        self._added: list[pa.Array] = []
        self._added_rows = 0

    def update(self, values: Sequence[str] | pa.Array) -> None:
        added = values if isinstance(values, pa.Array) else pa.array(values, pa.large_string())
        if not len(added):
            return
        self._added.append(added.cast(pa.large_string()))
        self._added_rows += len(added)
        if self._added_rows > max(len(self._distinct), 1 << 16):
            self._settle()

    def __len__(self) -> int:
        self._settle()
        return len(self._distinct)

    def _settle(self) -> None:
        if self._added:
            every = pa.chunked_array([self._distinct, *self._added], pa.large_string())
            self._distinct = every.unique()
            self._added, self._added_rows = [], 0


def add_groups(groups: dict[str, StringSet], names: list[str], codes: list[int]) -> None:
    """Add each group of ``names`` to the set of its split (``codes``: split numbers)."""
    by_code = np.array(codes, dtype=np.int8)
    for code, split in enumerate(SPLITS):
        picks = np.flatnonzero(by_code == code).tolist()
        if picks:
            groups[split].update([names[i] for i in picks])
