"""Stable, group-aware, seeded splits (hooklake.datasets.split)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.split import TEST, TRAIN, VALIDATION, Splitter, assign_splits, position
from tests.conftest import SeededRandom, examples

F = {"train": 0.8, "validation": 0.1, "test": 0.1}
FRACTIONS = st.sampled_from(
    [
        F,
        {"train": 0.5, "validation": 0.25, "test": 0.25},
        {"train": 0.9, "validation": 0.0, "test": 0.1},
        {"train": 1.0, "validation": 0.0, "test": 0.0},
    ]
)


@settings(max_examples=examples(200))
@given(
    groups=st.lists(st.sampled_from([f"cust-{i}" for i in range(40)]), max_size=200),
    others=st.lists(st.text(max_size=12), max_size=50),
    seed=st.integers(0, 2**31),
    fractions=FRACTIONS,
)
def test_a_group_keeps_its_split_whatever_other_groups_exist(
    groups: list[str], others: list[str], seed: int, fractions: dict[str, float]
) -> None:
    codes = assign_splits(groups, fractions, seed).tolist()
    seen: dict[str, int] = {}
    for g, c in zip(groups, codes, strict=True):
        assert seen.setdefault(g, c) == c
    # The lake grows: more groups, in another order. Nobody moves.
    grown = [*others, *reversed(groups)]
    again = dict(zip(grown, assign_splits(grown, fractions, seed).tolist(), strict=True))
    assert {g: again[g] for g in seen} == seen
    for g, c in seen.items():
        if fractions["validation"] == 0.0:
            assert c != VALIDATION, g
        if fractions["test"] == 0.0:
            assert c != TEST, g


def test_seed_changes_the_assignment_and_order_does_not(rng: SeededRandom) -> None:
    groups = np.arange(1000)
    a = assign_splits(groups, F, seed=42)
    shuffled = np.random.default_rng(rng.getrandbits(64)).permutation(groups)
    b = assign_splits(shuffled, F, seed=42)
    assert dict(zip(groups.tolist(), a.tolist(), strict=True)) == dict(
        zip(shuffled.tolist(), b.tolist(), strict=True)
    )
    assert not np.array_equal(a, assign_splits(groups, F, seed=43))


def test_fractions_hold_on_average() -> None:
    codes = assign_splits(range(100_000), F, seed=7)
    counts = np.bincount(codes, minlength=3)
    # Binomial spread: 3 standard deviations of 100k draws at p=0.1 is under 300.
    assert abs(counts[TRAIN] - 80_000) < 400
    assert abs(counts[VALIDATION] - 10_000) < 300
    assert abs(counts[TEST] - 10_000) < 300


def test_positions_are_fixed_numbers() -> None:
    # A change to the hash would move every customer between splits: pin it.
    assert position("2955840-1", 42) == 0.2948458020842481
    assert position("x", 0) == 0.029984663471558863
    splitter = Splitter(F, 42)
    assert splitter("a") == splitter("a") == assign_splits(["a"], F, 42)[0]
    assert assign_splits(["a", "b", "c", "a"], {"train": 1.0}, seed=1).tolist() == [TRAIN] * 4
    assert assign_splits([], F, seed=1).tolist() == []
