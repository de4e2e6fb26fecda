"""Stable, group-aware train/validation/test splits: a conversation (or, when grouped so, a
customer) never lands in two splits, so a model is never tested on a dialogue it trained on,
and a group keeps its split as the lake grows.

A group's split depends on its key and the recipe's seed only, never on which other groups
exist: a keyed BLAKE2b digest of the group key (the seed is the key of the hash) is read as a
number in [0, 1) and compared with the cumulative fractions (train, then validation, then
test). So a customer put in test by today's build is in test in every later build, full or
incremental, and the same key and seed give the same split on every machine. The price: the
fractions are met in expectation, not exactly (1,000 groups at 0.8/0.1/0.1 give about 800 ±13
train groups); the dataset card reports the actual fractions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import numpy as np
import numpy.typing as npt

from hooklake.datasets.recipe import SPLITS

#: ``SPLITS[code]`` is the split name of a code returned by :func:`split_of`.
TRAIN, VALIDATION, TEST = 0, 1, 2

_SCALE = float(1 << 64)


def group_key(
    group_by: str, conversation_id: str, channel_id: int | None, customer: int | None
) -> str:
    """The key a conversation is split by: its customer (``channel-customer``) or itself."""
    return f"{channel_id}-{customer}" if group_by == "customer" else conversation_id


def position(key: str, seed: int) -> float:
    """Where ``key`` falls in [0, 1) under ``seed``: a keyed hash, uniform over keys."""
    digest = hashlib.blake2b(
        key.encode("utf-8"), digest_size=8, key=str(seed).encode("ascii")
    ).digest()
    return int.from_bytes(digest, "big") / _SCALE


class Splitter:
    """The split code of a group key under a recipe's fractions and seed, cached per key (a
    customer's conversations ask for the same key in a row)."""

    def __init__(self, fractions: Mapping[str, float], seed: int) -> None:
        self.seed = seed
        train = fractions.get("train", 0.0)
        self._bounds = (train, train + fractions.get("validation", 0.0))
        self._last: tuple[str, int] | None = None

    def __call__(self, key: str) -> int:
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        x = position(key, self.seed)
        code = TRAIN if x < self._bounds[0] else VALIDATION if x < self._bounds[1] else TEST
        self._last = (key, code)
        return code


def assign_splits(
    groups: Iterable[object], fractions: Mapping[str, float], seed: int
) -> npt.NDArray[np.int8]:
    """A split code (:data:`TRAIN`, :data:`VALIDATION`, :data:`TEST`) for every entry of
    ``groups`` (compared as strings); equal group keys always get the same code, whatever
    else is in ``groups``."""
    splitter = Splitter(fractions, seed)
    return np.fromiter((splitter(str(g)) for g in groups), dtype=np.int8)


def split_name(code: int) -> str:
    return SPLITS[code]
