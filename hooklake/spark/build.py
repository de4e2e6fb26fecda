"""``hooklake build RECIPE --engine spark``: the same dataset, bytes and all, built by Spark.

The steps of :mod:`hooklake.datasets.build`, spread over a cluster:

1. **Pick** (Spark SQL, ``sql/build_conversations.sql``): the conversations the recipe selects
   come back to the driver, which assigns splits with the same Python code
   (:func:`hooklake.datasets.split.assign_splits`).
2. **Stream** (``sql/build_messages.sql``): their messages, range-partitioned by
   ``conversation_id`` and sorted by position inside each partition, so a partition holds
   whole conversations and partition *i* comes before partition *i + 1* in build order.
3. **Shape** in Spark tasks (``mapInArrow``): each task cuts its Arrow batches into whole
   conversations and runs the DuckDB build's own per-conversation Python (render, redact,
   shape, validate) through :func:`shape_batch`, one row per conversation back.
4. **Write** on the driver, which reads the shaped conversations partition by partition, in
   order (``toLocalIterator``), drops duplicate examples (first one wins, in build order) and
   writes files, card and manifest exactly as the DuckDB build does.

The shaped rows are persisted before the driver reads them, so every partition is shaped in
parallel first; the driver then holds one partition at a time.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import pickle
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from hooklake import layout
from hooklake.datasets import build as core
from hooklake.datasets.card import (
    CARD,
    MANIFEST,
    BuildInfo,
    DatasetStats,
    LakeFile,
    LakeVersion,
    remove_stale,
    write_card,
    write_manifest,
)
from hooklake.datasets.dedupe import Deduper
from hooklake.datasets.formats import writer_class, writer_for
from hooklake.datasets.lake import AsOf
from hooklake.datasets.recipe import SPLITS, Recipe, load_recipe
from hooklake.datasets.redact import Redactor
from hooklake.datasets.render import Example
from hooklake.datasets.signals import Rules
from hooklake.datasets.split import assign_splits
from hooklake.errors import BuildError, ConfigError
from hooklake.spark.order import ordered_rows
from hooklake.spark.read import LakePath, Snapshot, cannot_read, message_rows, snapshot, sql_text
from hooklake.spark.session import quiet, spark_session

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

#: Messages per partition of the shaping stage: enough work per task to amortise its start,
#: small enough that the driver holds one partition's examples at a time.
PARTITION_MESSAGES = 100_000
#: The columns of ``build_messages.sql`` (DuckDB and Spark), in order.
MESSAGE_COLUMNS = (
    "conversation_id",
    "channel_id",
    "customer_id",
    "message_key",
    "sender_type",
    "type",
    "text",
    "url",
    "message",
    "payload",
    "customer",
    "split",
)
_SHAPED_SCHEMA = "conversation_id string, shaped binary"
_ids = itertools.count()
#: What Spark says when an executor cannot open a file of the lake.
_UNREADABLE = ("FileNotFound", "PATH_NOT_FOUND", "No FileSystem for scheme")
T = TypeVar("T")


@dataclass(slots=True)
class Shaped:
    """One conversation after shaping, as a Spark task hands it to the driver: its examples
    or why it gave none, and what the build's statistics count while shaping it."""

    conversation_id: str
    split: int
    messages: int
    examples: list[Example]
    dropped: str | None
    redactions: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)


def shape_batch(batch: pa.RecordBatch, recipe: Recipe, rules: Rules | None) -> list[Shaped]:
    """Shape the whole conversations in ``batch`` (``build_messages.sql``'s columns, ordered by
    conversation and position) with the DuckDB build's own per-conversation code.

    The one place Spark tasks call into the build's per-conversation core: when the build
    gains an engine-neutral batch function, this body becomes a call to it (the driver's
    loop below mirrors the DuckDB build's and uses its small helpers).
    """
    out: list[Shaped] = []
    current: core._Conversation | None = None
    cols = [batch.column(name).to_pylist() for name in MESSAGE_COLUMNS]
    for (
        conv_id,
        channel,
        customer,
        key,
        sender,
        kind,
        text,
        url,
        message,
        payload,
        cust,
        split,
    ) in zip(*cols, strict=True):
        if current is None or conv_id != current.conversation_id:
            if current is not None:
                out.append(_shape_one(current, recipe, rules))
            current = core._Conversation(conv_id, channel, customer, split)
        current.rows.append((key, sender, kind, text, url, message, payload))
        if cust is not None:
            current.customers.add(cust)
    if current is not None:
        out.append(_shape_one(current, recipe, rules))
    return out


def _shape_one(conv: core._Conversation, recipe: Recipe, rules: Rules | None) -> Shaped:
    # A redactor per conversation: its counts are this conversation's, summed on the driver.
    redactor = Redactor()
    notes: Counter[str] = Counter()
    examples, dropped = core._shape(conv, recipe, redactor, core._Clock(), rules, notes)
    return Shaped(
        conv.conversation_id, conv.split, len(conv.rows), examples, dropped, redactor.counts, notes
    )


def shape_partition(
    batches: Iterator[pa.RecordBatch], recipe: Recipe, signals: bool
) -> Iterator[pa.RecordBatch]:
    """A Spark task: a partition's Arrow batches (whole conversations, in order, though a
    conversation may straddle two batches) in, one row per shaped conversation out."""
    rules = Rules(recipe) if signals else None
    held: pa.Table | None = None  # the tail of the previous batch: a conversation maybe unfinished
    for batch in batches:
        if batch.num_rows == 0:
            continue
        rows = pa.Table.from_batches([batch])
        if held is not None:
            rows = pa.concat_tables([held, rows])
        ids = rows.column("conversation_id")
        # Sorted by conversation: the last conversation's rows are the tail.
        cut = pc.index(ids, ids[-1]).as_py()
        held = rows.slice(cut)
        if cut:
            yield _encode(rows.slice(0, cut), recipe, rules)
    if held is not None:
        yield _encode(held, recipe, rules)


def _encode(rows: pa.Table, recipe: Recipe, rules: Rules | None) -> pa.RecordBatch:
    shaped = shape_batch(rows.combine_chunks().to_batches()[0], recipe, rules)
    return pa.record_batch(
        {
            "conversation_id": pa.array([s.conversation_id for s in shaped], pa.string()),
            "shaped": pa.array(
                [pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL) for s in shaped], pa.binary()
            ),
        }
    )


def _params(recipe: Recipe) -> dict[str, Any]:
    src = recipe.source
    return {"channels": list(src.channels) or None, "hooks": list(src.hooks) or None}


def _lake_version(snap: Snapshot) -> LakeVersion | None:
    # As the DuckDB build names it (hooklake.datasets.build._lake_version).
    v = snap.version()
    if v is None:
        return None
    stamp = v.committed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return LakeVersion(v.table, v.version, stamp)


def _select(spark: SparkSession, messages: str, recipe: Recipe) -> pa.Table:
    """The conversations to build from, their split codes and message counts (as
    :func:`hooklake.datasets.build._select`)."""
    params = {
        **_params(recipe),
        "since": recipe.source.since,
        "until": recipe.source.until,
        "group_by": recipe.split.group_by,
    }
    with quiet():
        picked = spark.sql(sql_text("build_conversations", messages=messages), args=params)
        table = picked.toArrow()
    codes = assign_splits(
        table.column("group_rank").to_numpy(), recipe.split.fractions(), recipe.split.seed
    )
    return pa.table(
        {
            "conversation_id": table.column("conversation_id"),
            "split": pa.array(codes, pa.int8()),
            "group_rank": table.column("group_rank"),
            "n_messages": table.column("n_messages"),
        }
    )


def _shaped(
    spark: SparkSession, messages: str, selection: pa.Table, recipe: Recipe, total: int
) -> DataFrame:
    """The selected conversations, shaped in Spark tasks: one row per conversation."""
    name = f"hooklake_build_selection_{next(_ids)}"
    with quiet():
        picked = spark.createDataFrame(selection.select(["conversation_id", "split"]))
    picked.createOrReplaceTempView(name)
    params = {**_params(recipe), "with_customer": recipe.redact.pii}
    rows = spark.sql(sql_text("build_messages", messages=messages, selection=name), args=params)
    parts = max(spark.sparkContext.defaultParallelism, math.ceil(total / PARTITION_MESSAGES))
    signals = writer_class(recipe.format).from_signals
    with quiet():
        return (
            rows.repartitionByRange(parts, "conversation_id")
            .sortWithinPartitions("conversation_id", "position")
            .select(*MESSAGE_COLUMNS)
            .mapInArrow(partial(shape_partition, recipe=recipe, signals=signals), _SHAPED_SCHEMA)
        )


@contextlib.contextmanager
def _on_spark(
    spark: SparkSession, lake_path: LakePath, snap: Snapshot, recipe: Recipe, clock: core._Clock
) -> Iterator[tuple[pa.Table, DataFrame]]:
    """Select and shape on Spark: yields the selection (split codes assigned) and the shaped
    conversations, every partition already computed and cached until the block ends."""
    rows = message_rows(spark, lake_path, snap)
    gap = timedelta(minutes=recipe.conversations.gap_minutes)
    ordered, messages = f"hooklake_ordered_{next(_ids)}", f"hooklake_build_rows_{next(_ids)}"
    ordered_rows(spark, rows, gap).createOrReplaceTempView(ordered)
    cached = spark.sql(
        sql_text("build_rows", messages=ordered), args={"with_customer": recipe.redact.pii}
    ).persist()
    cached.createOrReplaceTempView(messages)
    shaped: DataFrame | None = None
    try:
        selection = _job(lambda: _select(spark, messages, recipe), lake_path)
        clock.lap("select")
        if selection.num_rows == 0:
            stored = sum(f.rows for f in snap.files())
            raise BuildError(
                f"recipe {recipe.origin or recipe.name} selects no conversations from lake "
                f"{snap.path} ({stored} stored messages): check "
                "source.channels, source.hooks, source.since and source.until"
            )
        total = int(pc.sum(selection.column("n_messages")).as_py() or 0)
        shaped = _shaped(spark, messages, selection, recipe, total).persist()
        # Shape every partition in parallel before the driver reads them one by one.
        _job(shaped.count, lake_path)
        cached.unpersist()
        clock.lap("shape")
        yield selection, shaped
    finally:
        if shaped is not None:
            shaped.unpersist()
        cached.unpersist()


def build(
    recipe: Recipe | Path | str,
    lake_path: LakePath,
    out_dir: Path | str | None = None,
    progress: bool = True,
    *,
    as_of: AsOf | None = None,
    spark: SparkSession | None = None,
) -> core.BuildReport:
    """:func:`hooklake.datasets.build.build` on Spark: the same files, card and manifest.
    Uses ``spark``, else the active session (``spark-submit``'s), else a new local one."""
    started = time.perf_counter()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    out = Path(out_dir) if out_dir is not None else Path("out") / recipe.name
    spark = spark or spark_session()
    clock = core._Clock()
    stats = DatasetStats()
    redactions: Counter[str] = Counter()
    deduper = Deduper() if recipe.filter.dedupe else None
    signals = writer_class(recipe.format).from_signals

    snap = snapshot(lake_path, as_of)
    lake_files = [LakeFile(f"{layout.MESSAGES}/{f.path}", f.rows) for f in snap.files()]
    lake_version = _lake_version(snap)
    with _on_spark(spark, lake_path, snap, recipe, clock) as (selection, shaped):
        stats.conversations_read = selection.num_rows
        codes = selection.column("split").to_numpy()
        ranks = selection.column("group_rank").to_numpy()
        for code, split_name in enumerate(SPLITS):
            stats.groups[split_name] = len(set(ranks[codes == code].tolist()))
        del codes, ranks
        total = int(pc.sum(selection.column("n_messages")).as_py() or 0)
        out.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(prefix=".hooklake-build-", dir=out) as tmp,
            writer_for(recipe.format, out, weighted=recipe.weighted) as writer,
            tqdm(
                total=total, unit="msg", desc=recipe.name, disable=not progress, smoothing=0.1
            ) as bar,
        ):
            sources = core._open_sources(Path(tmp))
            try:
                for row in shaped.toLocalIterator(prefetchPartitions=True):
                    conv: Shaped = pickle.loads(row["shaped"])
                    bar.update(conv.messages)
                    stats.messages_read += conv.messages
                    redactions.update(conv.redactions)
                    stats.signal_notes.update(conv.notes)
                    if conv.dropped:
                        stats.dropped[conv.dropped] += 1
                        continue
                    split = SPLITS[conv.split]
                    used = False
                    for ex in conv.examples:
                        if deduper is not None and not deduper.first_time(core._compared(ex)):
                            stats.dropped["duplicate_examples"] += 1
                            continue
                        writer.write(split, ex)
                        sources[split].write(orjson.dumps(ex.sources or ex.source_keys) + b"\n")
                        stats.splits[split].add(ex)
                        stats.add_signal(ex)
                        used = True
                    stats.conversations_used += used
            finally:
                for fh in sources.values():
                    fh.close()
            if stats.examples == 0:
                raise BuildError(
                    f"recipe {recipe.origin or recipe.name} gives no examples from "
                    f"{stats.conversations_read} conversations (dropped: "
                    f"{dict(stats.dropped) or 'none'}): "
                    + (
                        "check the [preference] and [feedback] patterns against the lake's "
                        "texts (`hooklake sql`)"
                        if signals
                        else "check filter.min_user_turns, examples.targets and "
                        "examples.agent_turns"
                    )
                )
            files = writer.close()
            stats.redactions.update(redactions)
            info = BuildInfo(recipe, stats, files, lake_files, lake_version)
            card = write_card(out, info)
            write_manifest(
                out,
                info,
                card,
                {f.path.name: Path(tmp) / f"{split}.sources" for split, f in files.items()},
            )
        remove_stale(out, [f.path for f in files.values()])
        clock.lap("write")
    timings = dict(clock.spent)
    timings["total"] = time.perf_counter() - started
    return core.BuildReport(
        name=recipe.name,
        format=recipe.format,
        out_dir=out,
        files=files,
        card=out / CARD,
        manifest=out / MANIFEST,
        stats=stats,
        timings=timings,
    )


def build_on(
    engine: str,
    recipe: Recipe | Path | str,
    lake_path: LakePath,
    out_dir: Path | str | None = None,
    progress: bool = True,
    *,
    as_of: AsOf | None = None,
) -> core.BuildReport:
    """The build on an engine other than DuckDB (``hooklake build --engine``)."""
    if engine != "spark":
        raise ConfigError(f"unknown build engine {engine!r}: use 'duckdb' or 'spark'")
    return build(recipe, lake_path, out_dir, progress, as_of=as_of)


def _job(run: Callable[[], T], lake_path: LakePath) -> T:
    """Run a Spark action; a failure to read the lake's files becomes a :class:`SparkError`."""
    try:
        with quiet():
            return run()
    except Exception as exc:
        text = " ".join(str(exc).split())
        if any(sign in text for sign in _UNREADABLE):
            raise cannot_read(lake_path, text) from exc
        raise
