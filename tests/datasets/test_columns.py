"""Examples that stay columns from shaping to the files (:class:`ExampleColumns`) give the same
bytes as the same examples written as records, and the Arrow pieces of that path equal what
orjson writes one value at a time."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.card import DatasetStats
from hooklake.datasets.dedupe import Deduper
from hooklake.datasets.dialogues import handles
from hooklake.datasets.formats import writer_for
from hooklake.datasets.jsonl import json_list_lines
from hooklake.datasets.output import BuildOutput
from hooklake.datasets.shape import ShapedBatch, shape_batch
from tests.conftest import examples
from tests.datasets.test_shape import RECIPES, _recipe, batches

KEYS = st.text(
    alphabet=st.sampled_from(list('ab/-"\\\n\t\x00\x1f\x7fé👍'))
    | st.characters(exclude_categories=("Cs",)),
    max_size=6,
)


@settings(max_examples=examples(200))
@given(runs=st.lists(st.lists(KEYS, max_size=4), max_size=6))
def test_json_list_lines_equal_orjson(runs: list[list[str]]) -> None:
    flat = pa.array([k for run in runs for k in run], pa.string())
    starts = np.concatenate(([0], np.cumsum([len(r) for r in runs]))).astype(np.int64)
    assert json_list_lines(flat, starts) == b"".join(orjson.dumps(r) + b"\n" for r in runs)


def _written(shaped: ShapedBatch, fmt: str, weighted: bool, dedupe: bool) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        stats = DatasetStats()
        with writer_for(fmt, out, weighted=weighted) as writer:
            output = BuildOutput(writer, Deduper() if dedupe else None, stats, out)
            output.add(shaped)
            output.close_sources()
            writer.close()
        files = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
        files["stats"] = orjson.dumps(stats.to_dict(), option=orjson.OPT_SORT_KEYS)
        return files


@settings(max_examples=examples(100))
@given(
    batch=batches(),
    which=st.sampled_from(
        [
            i
            for i in range(len(RECIPES))
            if handles(_recipe(i)) and _recipe(i).format not in ("preference", "feedback")
        ]
    ),
    dedupe=st.booleans(),
)
def test_columns_write_what_records_write(batch: pa.Table, which: int, dedupe: bool) -> None:
    recipe = _recipe(which)
    shaped = shape_batch(batch, recipe)
    assert shaped.columns is not None or not shaped.conversations
    as_records = dataclasses.replace(shaped, records=list(shaped.examples), columns=None)
    as_columns = shape_batch(batch, recipe)
    fmt, weighted = recipe.format, recipe.weighted
    columns = _written(as_columns, fmt, weighted, dedupe)
    records = _written(as_records, fmt, weighted, dedupe)
    assert columns == records
