"""The byte-level text passes against the regular expressions they stand for."""

from __future__ import annotations

import re

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.text_bytes import ascii_runs_collapsed, other_space_or_runs
from tests.conftest import examples

# Every ASCII whitespace character, runs of spaces, and characters of several UTF-8 lengths.
ALPHABET = st.sampled_from(list(" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f aZ.\x00\x85\xa0é\u3000😀"))
TEXTS = st.lists(st.one_of(st.text(alphabet=ALPHABET, max_size=8), st.none()), max_size=8)
#: Leading texts sliced off, so the array's offsets do not start at 0.
SKIPPED = st.integers(0, 3)


def _array(texts: list[str | None], skipped: int, large: bool) -> pa.Array:
    kind = pa.large_string() if large else pa.string()
    return pa.array(["  \t x"] * skipped + texts, kind).slice(skipped)


@settings(max_examples=examples(300))
@given(texts=TEXTS, skipped=SKIPPED, large=st.booleans())
def test_other_space_or_runs_is_the_regex(
    texts: list[str | None], skipped: int, large: bool
) -> None:
    found = other_space_or_runs(_array(texts, skipped, large)).tolist()
    pattern = re.compile("[\t-\r\x1c-\x1f]|  ")
    assert found == [t is not None and pattern.search(t) is not None for t in texts]


@settings(max_examples=examples(300))
@given(texts=TEXTS, skipped=SKIPPED, large=st.booleans())
def test_ascii_runs_collapsed_is_the_regex(
    texts: list[str | None], skipped: int, large: bool
) -> None:
    got = ascii_runs_collapsed(_array(texts, skipped, large))
    assert got.type == (pa.large_string() if large else pa.string())
    pattern = re.compile("[\t-\r\x1c-\x1f ]+")
    assert got.to_pylist() == [None if t is None else pattern.sub(" ", t) for t in texts]
