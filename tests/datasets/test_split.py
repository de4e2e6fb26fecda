"""Group-aware, seeded splits (hooklake.datasets.split)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.split import TEST, TRAIN, VALIDATION, assign_splits, split_counts
from tests.conftest import SeededRandom, examples

F = {"train": 0.8, "validation": 0.1, "test": 0.1}


def test_counts_add_up_and_follow_the_fractions() -> None:
    assert split_counts(10, F) == (8, 1, 1)
    assert split_counts(7, F) == (5, 1, 1)
    assert split_counts(1, F) == (1, 0, 0)
    assert split_counts(0, F) == (0, 0, 0)
    assert split_counts(5, {"train": 1.0, "validation": 0.0, "test": 0.0}) == (5, 0, 0)
    assert split_counts(3, {"train": 0.34, "validation": 0.33, "test": 0.33}) == (1, 1, 1)


@settings(max_examples=examples(200))
@given(
    groups=st.lists(st.sampled_from([f"cust-{i}" for i in range(40)]), max_size=200),
    seed=st.integers(0, 2**31),
    fractions=st.sampled_from(
        [
            F,
            {"train": 0.5, "validation": 0.25, "test": 0.25},
            {"train": 0.9, "validation": 0.0, "test": 0.1},
            {"train": 1.0, "validation": 0.0, "test": 0.0},
        ]
    ),
)
def test_a_group_is_never_in_two_splits(
    groups: list[str], seed: int, fractions: dict[str, float]
) -> None:
    codes = assign_splits(groups, fractions, seed)
    seen: dict[str, int] = {}
    for g, c in zip(groups, codes.tolist(), strict=True):
        assert seen.setdefault(g, c) == c
    n = len(set(groups))
    per_split = [
        len({g for g, c in seen.items() if c == code}) for code in (TRAIN, VALIDATION, TEST)
    ]
    assert tuple(per_split) == split_counts(n, fractions)


def test_same_seed_same_split_whatever_the_order_of_groups(rng: SeededRandom) -> None:
    groups = np.arange(1000)
    a = assign_splits(groups, F, seed=42)
    shuffled = np.random.default_rng(rng.getrandbits(64)).permutation(groups)
    b = assign_splits(shuffled, F, seed=42)
    assert dict(zip(groups.tolist(), a.tolist(), strict=True)) == dict(
        zip(shuffled.tolist(), b.tolist(), strict=True)
    )
    assert np.array_equal(a, assign_splits(groups, F, seed=42))
    assert not np.array_equal(a, assign_splits(groups, F, seed=43))


def test_large_counts_match_the_fractions_exactly() -> None:
    codes = assign_splits(np.arange(100_000), F, seed=7)
    assert np.bincount(codes, minlength=3).tolist() == [80_000, 10_000, 10_000]


def test_zero_fractions_give_empty_splits_and_strings_work() -> None:
    codes = assign_splits(["a", "b", "c", "a"], {"train": 1.0}, seed=1)
    assert codes.tolist() == [TRAIN] * 4
    assert assign_splits([], F, seed=1).tolist() == []
