"""The compact sets a build keeps from its first batch to its last (digests for dedupe, split
groups for the card) against Python's own sets, over random sequences of batches."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.dedupe import Deduper
from hooklake.datasets.distinct import DigestSet, StringSet, add_groups
from hooklake.datasets.recipe import SPLITS

# Few distinct values, so batches repeat each other and themselves; both ends of uint64.
DIGEST = st.sampled_from([0, 1, 2, 3, 5, 8, 2**63 - 1, 2**63, 2**64 - 2, 2**64 - 1]) | st.integers(
    0, 40
)
BATCHES = st.lists(st.lists(DIGEST, max_size=30), max_size=25)


@settings(max_examples=200, deadline=None)
@given(seen=st.lists(DIGEST, max_size=20), batches=BATCHES)
def test_digest_set_says_new_exactly_when_a_python_set_would(
    seen: list[int], batches: list[list[int]]
) -> None:
    digests = DigestSet(seen)
    reference = set(seen)
    for batch in batches:
        expected = []
        for d in batch:
            expected.append(d not in reference)
            reference.add(d)
        assert digests.first_seen(batch).tolist() == expected
        assert len(digests) == len(reference)
    assert all(d in digests for d in reference)
    assert all(d not in digests for d in range(41, 60))


def test_digest_set_keeps_few_sorted_runs_over_many_batches() -> None:
    rng = np.random.default_rng(11)
    print("seed 11")
    digests = DigestSet()
    kept: set[int] = set()
    for _ in range(500):
        batch = rng.integers(0, 2**64, 200, dtype=np.uint64, endpoint=False)
        batch[::7] = batch[0]  # repeats within the batch
        fresh = digests.first_seen(batch)
        assert fresh.sum() == len(set(batch.tolist()) - kept)
        kept |= set(batch.tolist())
    runs = digests._runs
    assert len(runs) <= 17  # about log2(n) for n = 87k
    for run in runs:
        assert run.dtype == np.uint64 and bool(np.all(run[1:] > run[:-1]))
    assert len(digests) == len(kept)


@settings(max_examples=100, deadline=None)
@given(batches=BATCHES)
def test_deduper_keeps_the_first_of_each_digest_in_order(batches: list[list[int]]) -> None:
    deduper = Deduper(seen=[1, 2])
    seen = {1, 2}
    first: list[int] = []
    for batch in batches:
        deduper.first_times(batch)
        for d in batch:
            if d not in seen:
                seen.add(d)
                first.append(d)
    assert deduper.added.tolist() == first
    assert deduper.dropped == sum(len(b) for b in batches) - len(first)
    assert len(deduper) == len(seen)


@settings(max_examples=100, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.text(max_size=3), st.integers(0, len(SPLITS) - 1)), max_size=40),
        max_size=20,
    )
)
def test_groups_are_counted_per_split_as_python_sets_count_them(
    batches: list[list[tuple[str, int]]],
) -> None:
    groups = {s: StringSet() for s in SPLITS}
    reference: dict[str, set[str]] = {s: set() for s in SPLITS}
    for batch in batches:
        add_groups(groups, [g for g, _ in batch], [c for _, c in batch])
        for g, c in batch:
            reference[SPLITS[c]].add(g)
        assert {s: len(g) for s, g in groups.items()} == {s: len(r) for s, r in reference.items()}


def test_a_string_set_stays_exact_across_its_settling() -> None:
    names = StringSet()
    for k in range(5):
        names.update([f"1-{i}" for i in range(k * 50_000, k * 50_000 + 80_000)])
    assert len(names) == 4 * 50_000 + 80_000
