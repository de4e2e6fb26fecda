"""``hooklake build``: a recipe and a lake in, a training-ready dataset folder out.

The steps, in order:

1. **Stream** the recipe's messages out of DuckDB in Arrow batches of whole conversations, in
   build order (conversation id, then position): :mod:`.stream`. Memory holds one batch
   whatever the size of the lake.
2. **Shape** each batch: pick the conversations the recipe's dates select, give each its split
   (a keyed hash of its customer or itself, :mod:`.split`), render the messages, redact the
   batch and make each conversation's examples: :func:`.shape.shape_batch`, the core every
   engine calls. The ``preference`` and ``feedback`` formats make their rows from customers'
   signals (:mod:`.signals`).
3. **Dedupe and write**, on this one process because both follow the order of the whole
   build: drop examples seen before (:mod:`.dedupe`), write each batch's examples to their
   split files (:mod:`.writers`; a line that would not pass the format's checks stops the
   build with :class:`~hooklake.errors.BuildError`), then the card and the manifest
   (:mod:`.card`).

An incremental build (``incremental=True``) reads only the conversations that closed since the
previous one and writes them as new shards, with the state it needs kept in the folder
(:mod:`.increments`). Everything is ordered and seeded, so the same lake and recipe give
byte-identical files.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

import orjson
import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from hooklake import layout
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
from hooklake.datasets.connection import lake_errors, sql_text
from hooklake.datasets.dedupe import Deduper, fingerprints
from hooklake.datasets.formats import writer_class, writer_for
from hooklake.datasets.increments import (
    STATE_DIR,
    Increments,
    load_increments,
    recipe_hash,
    save_shard_state,
    sources_path,
)
from hooklake.datasets.lake import AsOf, Lake
from hooklake.datasets.recipe import SPLITS, Recipe, load_recipe
from hooklake.datasets.render import Example, Message
from hooklake.datasets.shape import ShapedBatch, shape_batch
from hooklake.datasets.signals import Rules
from hooklake.datasets.stream import conversation_batches
from hooklake.datasets.writers import OutputFile, Writer
from hooklake.errors import BuildError

#: DuckDB's memory limit during a build unless $HOOKLAKE_MEMORY_LIMIT or the caller says
#: otherwise; past it the sort spills to disk instead of growing with the lake.
DEFAULT_MEMORY_LIMIT = "512MB"


@dataclass
class BuildReport:
    """What a build produced and what it cost."""

    name: str
    format: str
    out_dir: Path
    #: The files this build wrote, by split (an incremental build: its new shards).
    files: dict[str, OutputFile]
    card: Path
    manifest: Path
    #: Counts over the whole dataset (all shards of an incremental build).
    stats: DatasetStats
    #: Seconds per stage: open (the lake), query (waiting on DuckDB for the next batch),
    #: stream (re-cutting batches), shape (render, redact, examples), write (dedupe, write,
    #: card, manifest), total.
    timings: dict[str, float] = field(default_factory=dict)
    #: Incremental builds: examples this build added (``examples`` counts all shards).
    added: int = 0

    @property
    def examples(self) -> int:
        return self.stats.examples

    def counts(self) -> dict[str, int]:
        return {name: s.examples for name, s in self.stats.splits.items()}

    def summary(self) -> str:
        """One line for the terminal."""
        c = self.counts()
        split = " / ".join(f"{k} {v}" for k, v in c.items())
        redacted = sum(self.stats.redactions.values())
        dropped = (
            ", ".join(
                f"{v} {k.replace('_', ' ')}" for k, v in sorted(self.stats.dropped.items()) if v
            )
            or "none dropped"
        )
        return (
            f"{self.name}: {self.examples} {self.format} examples ({split}) from "
            f"{self.stats.conversations_read} conversations; {dropped}; {redacted} redactions; "
            f"{self.timings.get('total', 0.0):.1f}s -> {self.out_dir}"
        )


class _Clock:
    """Adds up wall time per stage."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.spent[stage] += now - self._t
        self._t = now


def _lake_version(lake: Lake) -> LakeVersion | None:
    # Builds read the messages table only: its version is what a rebuild needs.
    for v in lake.versions():
        if v.table == layout.MESSAGES:
            return LakeVersion(v.table, v.version, _stamp(v.committed_at))
    return None


def _stamp(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _lake_files(lake: Lake) -> list[LakeFile]:
    # The Delta log records every file's row count: no file needs opening.
    return [LakeFile(f"{layout.MESSAGES}/{f.path}", f.rows) for f in lake.files(layout.MESSAGES)]


def open_conversations(lake: Lake, gap: timedelta) -> tuple[datetime | None, set[str]]:
    """The cut-off (newest message in the lake minus ``gap``) and the conversations still
    open at it: those with a message at or after it, which their customer's next message could
    still join. Every other conversation is closed."""
    params = {"gap_us": gap // timedelta(microseconds=1)}
    with lake_errors("cannot find the lake's open conversations"):
        rows = lake.connection.sql(sql_text("build_conversations"), params=params).fetchall()
    cutoff = rows[0][1] if rows else None
    return cutoff, {cid for cid, _ in rows[1:]}


def _compared(ex: Example) -> list[Message]:
    """What makes two examples duplicates: their messages, plus the rejected reply and the
    label of preference and feedback rows."""
    out = [*ex.messages, *(ex.rejected or [])]
    if ex.label is not None:
        out.append(Message("system", f"label={ex.label}"))
    return out


def _skipping(ids: set[str]) -> Callable[[pa.Table], pa.Table]:
    """A filter dropping the rows of conversations ``ids``."""
    if not ids:
        return lambda table: table
    value_set = pa.array(sorted(ids), pa.string())

    def skip(table: pa.Table) -> pa.Table:
        inside = pc.is_in(table.column("conversation_id"), value_set=value_set)
        return table.filter(pc.invert(inside))

    return skip


class _Output:
    """Dedupe, split files, sources and counts: what one process does with shaped batches."""

    def __init__(
        self, writer: Writer, deduper: Deduper | None, stats: DatasetStats, tmp: Path
    ) -> None:
        self.writer = writer
        self.deduper = deduper
        self.stats = stats
        self.groups: dict[str, set[str]] = {s: set() for s in SPLITS}
        self.conversations: list[tuple[str, str, int]] = []
        # Open for the life of the build: close_sources() closes them.
        self.sources: dict[str, IO[bytes]] = {
            split: open(tmp / f"{split}.sources", "wb", buffering=1 << 20)  # noqa: SIM115
            for split in SPLITS
        }
        self.source_paths = {split: tmp / f"{split}.sources" for split in SPLITS}

    def add(self, shaped: ShapedBatch) -> None:
        st = self.stats
        st.messages_read += shaped.messages_read
        st.conversations_read += len(shaped.conversations)
        st.dropped.update(shaped.dropped)
        st.redactions.update(shaped.redactions)
        st.signal_notes.update(shaped.signal_notes)
        for cid, group, code in zip(
            shaped.conversations, shaped.groups, shaped.conversation_splits, strict=True
        ):
            self.groups[SPLITS[code]].add(group)
            self.conversations.append((cid, group, code))
        kept: dict[str, list[Example]] = {s: [] for s in SPLITS}
        used: set[str] = set()
        digests = (
            fingerprints([_compared(ex) for ex in shaped.examples])
            if self.deduper is not None
            else []
        )
        for i, (ex, code) in enumerate(zip(shaped.examples, shaped.splits, strict=True)):
            if self.deduper is not None and not self.deduper.first_time_digest(digests[i]):
                st.dropped["duplicate_examples"] += 1
                continue
            split = SPLITS[code]
            kept[split].append(ex)
            used.add(ex.conversation_id)
        st.conversations_used += len(used)
        for split, examples in kept.items():
            if not examples:
                continue
            self.writer.write_many(split, examples)
            self.sources[split].write(
                b"".join(orjson.dumps(ex.sources or ex.source_keys) + b"\n" for ex in examples)
            )
            for ex in examples:
                st.splits[split].add(ex)
                st.add_signal(ex)

    def close_sources(self) -> None:
        for fh in self.sources.values():
            fh.close()


def build(
    recipe: Recipe | Path | str,
    lake_path: Path | str,
    out_dir: Path | str | None = None,
    progress: bool = True,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    as_of: AsOf | None = None,
    incremental: bool = False,
    closed_only: bool = False,
) -> BuildReport:
    """Build the dataset ``recipe`` describes from the lake at ``lake_path`` into ``out_dir``
    (default ``out/<recipe name>``), from the latest version of its tables or the one
    ``as_of`` names (see :class:`Lake`). Returns what was written; raises
    :class:`~hooklake.errors.BuildError` when no valid dataset can be made, leaving earlier
    outputs in ``out_dir`` as they were.

    A full build reads every conversation; with ``closed_only`` only the closed ones (whose
    last message is older than the recipe's gap before the newest message in the lake). With
    ``incremental`` the build adds, as new shards (``train-00001.jsonl``, ...), the closed
    conversations the folder's earlier incremental builds do not hold, and rewrites the card
    and the manifest for all shards; N incremental builds over a growing lake hold the
    examples of one ``closed_only`` build of the final lake, each in the same split (with
    dedupe on, a duplicate is dropped from whichever increment sees it last)."""
    started = time.perf_counter()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    out = Path(out_dir) if out_dir is not None else Path("out") / recipe.name
    fmt = writer_class(recipe.format)
    if incremental and not fmt.shards:
        raise BuildError(
            f"format {recipe.format!r} cannot be built incrementally (its card shows rows "
            "found across the whole dataset): build it without --incremental"
        )
    previous = load_increments(out, recipe) if incremental else Increments()
    limit = memory_limit or os.environ.get("HOOKLAKE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    gap = timedelta(minutes=recipe.conversations.gap_minutes)
    clock = _Clock()
    stats = DatasetStats()
    deduper = Deduper(previous.fingerprints) if recipe.filter.dedupe else None
    rules = Rules(recipe) if fmt.from_signals else None
    shard = previous.next_shard if incremental else None

    opened = Lake(lake_path, session_gap=gap, memory_limit=limit, threads=threads, as_of=as_of)
    with opened as lake:
        lake_files = _lake_files(lake)
        lake_version = _lake_version(lake)
        cutoff: datetime | None = None
        skip = None
        if incremental or closed_only:
            cutoff, still_open = open_conversations(lake, gap)
            skip = _skipping(still_open | previous.conversations)
        clock.lap("open")
        out.mkdir(parents=True, exist_ok=True)
        with (
            tempfile.TemporaryDirectory(prefix=".hooklake-build-", dir=out) as tmp,
            writer_for(recipe.format, out, weighted=recipe.weighted, shard=shard) as writer,
            tqdm(
                total=sum(f.rows for f in lake_files),
                unit="msg",
                desc=recipe.name,
                disable=not progress,
                smoothing=0.1,
            ) as bar,
        ):
            output = _Output(writer, deduper, stats, Path(tmp))
            # Shaping allocates millions of small objects and frees them batch by batch, none
            # in a reference cycle: the cycle collector's passes over them are pure cost (a
            # third of the shaping time).
            collecting = gc.isenabled()
            gc.disable()
            try:
                for table in conversation_batches(
                    lake, recipe, skip=skip, on_rows=bar.update, on_wait=clock.lap
                ):
                    shaped = shape_batch(table, recipe, rules)
                    clock.lap("shape")
                    output.add(shaped)
                    clock.lap("write")
            finally:
                if collecting:
                    gc.enable()
                output.close_sources()
            bar.total = bar.n
            bar.refresh()
            stats.groups = {s: len(g) for s, g in output.groups.items()}
            if incremental and stats.conversations_read == 0:
                # Nothing closed since the previous build: the folder stays as it is.
                writer.abort()
                return _nothing_new(recipe, out, previous, started)
            if stats.conversations_read == 0:
                raise BuildError(
                    f"recipe {recipe.origin or recipe.name} selects no "
                    f"{'closed ' if closed_only else ''}conversations from lake {lake.path} "
                    f"({sum(f.rows for f in lake_files)} stored messages): check "
                    "source.channels, source.hooks, source.since and source.until"
                )
            if stats.examples == 0 and not (incremental and previous.history):
                raise BuildError(
                    f"recipe {recipe.origin or recipe.name} gives no examples from "
                    f"{stats.conversations_read} conversations (dropped: "
                    f"{dict(stats.dropped) or 'none'}): "
                    + (
                        "check the [preference] and [feedback] patterns against the lake's "
                        "texts (`hooklake sql`)"
                        if rules is not None
                        else "check filter.min_user_turns, examples.targets and "
                        "examples.agent_turns"
                    )
                )
            files = writer.close()
            sources = {f.path.name: output.source_paths[s] for s, f in files.items()}
            if incremental:
                report_stats, info, sources = _increment(
                    out, recipe, previous, stats, output, files, sources, deduper, cutoff,
                    lake_files, lake_version,
                )  # fmt: skip
            else:
                report_stats = stats
                info = BuildInfo(recipe, stats, files, lake_files, lake_version)
            card = write_card(out, info)
            write_manifest(out, info, card, sources)
        if not incremental:
            remove_stale(out, [f.path for f in files.values()], STATE_DIR)
        clock.lap("write")
    timings = dict(clock.spent)
    timings["total"] = time.perf_counter() - started
    return BuildReport(
        name=recipe.name,
        format=recipe.format,
        out_dir=out,
        files=files,
        card=out / CARD,
        manifest=out / MANIFEST,
        stats=report_stats,
        timings=timings,
        added=stats.examples,
    )


def _nothing_new(recipe: Recipe, out: Path, previous: Increments, started: float) -> BuildReport:
    return BuildReport(
        name=recipe.name,
        format=recipe.format,
        out_dir=out,
        files={},
        card=out / CARD,
        manifest=out / MANIFEST,
        stats=previous.stats,
        timings={"total": time.perf_counter() - started},
    )


def _increment(
    out: Path,
    recipe: Recipe,
    previous: Increments,
    stats: DatasetStats,
    output: _Output,
    files: dict[str, OutputFile],
    sources: dict[str, Path],
    deduper: Deduper | None,
    cutoff: datetime | None,
    lake_files: list[LakeFile],
    lake_version: LakeVersion | None,
) -> tuple[DatasetStats, BuildInfo, dict[str, Path]]:
    """Keep this increment's state and describe all shards: the stats of every increment
    added up, every shard file, every shard's sources."""
    shard = previous.next_shard
    # Empty shard files would only clutter the folder (and trip some JSON readers).
    for split, f in list(files.items()):
        if f.rows == 0:
            f.path.unlink()
            del files[split]
            sources.pop(f.path.name)
    (out / STATE_DIR).mkdir(exist_ok=True)
    for name, src in sources.items():
        os.replace(src, sources_path(out, name))
    conversations = output.conversations
    save_shard_state(
        out,
        shard,
        [c for c, _, _ in conversations],
        [g for _, g, _ in conversations],
        [code for _, _, code in conversations],
        deduper.added if deduper is not None else [],
    )
    total = previous.stats
    total.merge(stats)
    groups = previous.groups
    for _, group, code in conversations:
        groups[SPLITS[code]].add(group)
    total.groups = {s: len(g) for s, g in groups.items()}
    shards: dict[str, list[OutputFile]] = {s: [] for s in SPLITS}
    for name, o in previous.outputs.items():
        split = name.split("-", 1)[0]
        shards[split].append(OutputFile(out / name, int(o["rows"]), int(o["bytes"]), o["sha256"]))
    for split, f in files.items():
        shards[split].append(f)
    history = [
        *previous.history,
        {
            "shard": shard,
            "cutoff": _stamp(cutoff) if cutoff is not None else None,
            "conversations": len(conversations),
            "examples": stats.examples,
            "lake_version": lake_version.version if lake_version else None,
        },
    ]
    increments = {
        "recipe_sha256": recipe_hash(recipe),
        "cutoff": history[-1]["cutoff"],
        "state": STATE_DIR,
        "increments": history,
    }
    info = BuildInfo(
        recipe, total, files, lake_files, lake_version, shards=shards, increments=increments
    )
    all_sources = {
        f.path.name: sources_path(out, f.path.name)
        for split in SPLITS
        for f in sorted(shards[split], key=lambda f: f.path.name)
    }
    return total, info, all_sources
