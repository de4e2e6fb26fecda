"""``hooklake build``: a recipe and a lake in, a training-ready dataset folder out.

The steps, in order:

1. **Stream** the recipe's messages out of DuckDB in Arrow batches of whole conversations, in
   build order (conversation id, then position): :mod:`.stream`. Memory holds a few batches
   (the one DuckDB makes, the one being shaped, one shaped and waiting, the one being
   written) whatever the size of the lake.
2. **Shape** each batch: pick the conversations the recipe's dates select, give each its split
   (a keyed hash of its customer or itself, :mod:`.split`), render the messages, redact the
   batch and make each conversation's examples: :func:`.shape.shape_batch`, the core every
   engine calls. The ``preference`` and ``feedback`` formats make their rows from customers'
   signals (:mod:`.signals`).
3. **Dedupe and write** (:class:`.output.BuildOutput`), on the calling thread while a thread
   of its own shapes the next batch, and on this one process because both follow the order
   of the whole build: drop examples seen before (:mod:`.dedupe`), write
   each batch's examples to their split files (:mod:`.writers`; a line that would not pass
   the format's checks stops the build with :class:`~hooklake.errors.BuildError`), then the
   card and the manifest (:mod:`.card`).

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
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from tqdm import tqdm

from hooklake import layout
from hooklake.datasets.ahead import ahead
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
from hooklake.datasets.increments import (
    STATE_DIR,
    Increments,
    describe_increment,
    load_increments,
    stamp,
)
from hooklake.datasets.lake import AsOf, Lake
from hooklake.datasets.output import BuildOutput
from hooklake.datasets.recipe import Recipe, load_recipe
from hooklake.datasets.shape import ShapedBatch, shape_batch
from hooklake.datasets.signals import Rules
from hooklake.datasets.stream import conversation_batches
from hooklake.datasets.writers import OutputFile
from hooklake.db import lake_errors, query_sql
from hooklake.errors import BuildError, ConfigError
from hooklake.wording import counted, counted_phrase

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
    #: Seconds per stage: open (the lake); query (the shaping thread waiting for the next
    #: batch, which DuckDB makes and the stream re-cuts on a thread of its own); shape (the
    #: shaping thread rendering, redacting, making examples); write (this thread deduping and
    #: writing, the card and manifest included); total. The three threads overlap, so the
    #: stages add up to more than the total.
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
                counted_phrase(v, k.replace("_", " "))
                for k, v in sorted(self.stats.dropped.items())
                if v
            )
            or "none dropped"
        )
        return (
            f"{self.name}: {counted(self.examples, f'{self.format} example')} ({split}) from "
            f"{counted(self.stats.conversations_read, 'conversation')}; {dropped}; "
            f"{counted(redacted, 'redaction')}; "
            f"{self.timings.get('total', 0.0):.1f}s -> {self.out_dir}"
        )

    def files_line(self) -> str:
        """One line for the terminal: the files in the folder, or that nothing was written
        (a first incremental build before any conversation closed)."""
        if not self.files and not self.card.exists():
            return (
                f"files: none written to {self.out_dir}: no conversation the recipe selects "
                "has closed yet (a later run adds them)"
            )
        names = ", ".join(f.path.name for f in self.files.values()) or "no new shard"
        return f"files: {names}, {self.card.name}, {self.manifest.name} in {self.out_dir}"


def _reasons(dropped: Mapping[str, int]) -> str:
    """The conversations a build dropped, by reason, as a sentence reads them:
    ``3 conversations with too few user turns, 1 duplicate examples``."""
    return ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in sorted(dropped.items()))


class _Clock:
    """Adds up wall time per stage, on one thread."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = defaultdict(float)
        self._t = time.perf_counter()

    def restart(self) -> None:
        """Count from now (what passed since the last lap belongs to no stage)."""
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.spent[stage] += now - self._t
        self._t = now


def _lake_version(lake: Lake) -> LakeVersion | None:
    # Builds read the messages table only: its version is what a rebuild needs.
    for v in lake.versions():
        if v.table == layout.MESSAGES:
            return LakeVersion(v.table, v.version, stamp(v.committed_at))
    return None


def _lake_files(lake: Lake) -> list[LakeFile]:
    # The Delta log records every file's row count: no file needs opening.
    return [LakeFile(f"{layout.MESSAGES}/{f.path}", f.rows) for f in lake.files(layout.MESSAGES)]


def open_conversations(lake: Lake, gap: timedelta) -> tuple[datetime | None, set[str]]:
    """The cut-off (newest message in the lake minus ``gap``) and the conversations still
    open at it: those with a message at or after it, which their customer's next message could
    still join. Every other conversation is closed."""
    params = {"gap_us": gap // timedelta(microseconds=1)}
    with lake_errors("cannot find the lake's open conversations"):
        rows = lake.connection.sql(query_sql("build_conversations"), params=params).fetchall()
    cutoff = rows[0][1] if rows else None
    return cutoff, {cid for cid, _ in rows[1:]}


def _skipping(ids: set[str]) -> Callable[[pa.Table], pa.Table]:
    """A filter dropping the rows of conversations ``ids``."""
    if not ids:
        return lambda table: table
    value_set = pa.array(sorted(ids), pa.string())

    def skip(table: pa.Table) -> pa.Table:
        inside = pc.is_in(table.column("conversation_id"), value_set=value_set)
        return table.filter(pc.invert(inside))

    return skip


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
    engine: str = "duckdb",
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
    dedupe on, a duplicate is dropped from whichever increment sees it last).

    ``engine="spark"`` shapes the conversations in Spark tasks (:mod:`hooklake.spark.build`)
    from the same version of the lake; this process dedupes and writes them as for DuckDB, so
    the files are the same, byte for byte."""
    if engine not in ("duckdb", "spark"):
        raise ConfigError(f"unknown build engine {engine!r}: use 'duckdb' or 'spark'")
    if engine == "spark" and (incremental or closed_only):
        raise BuildError(
            "incremental and closed-only builds run on DuckDB only: leave out --engine spark"
        )
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
    with opened as lake, _arrow_memory():
        lake_files = _lake_files(lake)
        lake_version = _lake_version(lake)
        cutoff: datetime | None = None
        skip = None
        if incremental or closed_only:
            cutoff, still_open = open_conversations(lake, gap)
            skip = _skipping(still_open | previous.conversations)
        clock.lap("open")
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # A path under a file, a read-only disk: the user's --out, not Hooklake, is wrong.
            raise BuildError(
                f"cannot write the dataset into {out}: {exc.strerror or exc}; pass another --out"
            ) from None
        with (
            tempfile.TemporaryDirectory(prefix=".hooklake-build-", dir=out) as tmp,
            writer_for(recipe.format, out, weighted=recipe.weighted, shard=shard) as writer,
            # Counts what the card calls messages read: the recipe's messages, duplicate
            # deliveries and system events left out. How many that is is known only at the end
            # (the lake's stored rows hold those too), so the bar shows its total then.
            tqdm(
                unit="msg",
                desc=f"{recipe.name}: messages read",
                disable=not progress,
                smoothing=0.1,
            ) as bar,
        ):
            output = BuildOutput(writer, deduper, stats, Path(tmp), keep_conversations=incremental)
            # Shaping allocates millions of small objects and frees them batch by batch, none
            # in a reference cycle: the cycle collector's passes over them are pure cost (a
            # third of the shaping time).
            collecting = gc.isenabled()
            gc.disable()
            # Batches are shaped on a thread of their own, one ahead of the batch this thread
            # dedupes and writes (in build order): both stages are partly Arrow, which lets go
            # of Python's lock (1M messages: 4.3 s -> 3.7-4.1 s).
            shaping_clock = _Clock()
            shaping = _shaped(engine, lake, lake_path, recipe, rules, skip, shaping_clock)
            try:
                for shaped in ahead(shaping):
                    clock.restart()
                    output.add(shaped)
                    clock.lap("write")
                    bar.update(shaped.messages_read)
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
                    f"({counted(sum(f.rows for f in lake_files), 'stored message')}): check "
                    "source.channels, source.hooks, source.since and source.until"
                )
            if stats.examples == 0 and not (incremental and previous.history):
                raise BuildError(
                    f"recipe {recipe.origin or recipe.name} gives no examples from "
                    f"{counted(stats.conversations_read, 'conversation')} (dropped: "
                    f"{_reasons(stats.dropped) or 'none'}): "
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
                report_stats, info, sources = describe_increment(
                    out, recipe, previous, stats, output, files, sources, deduper, cutoff,
                    lake_files, lake_version,
                )  # fmt: skip
            else:
                report_stats = stats
                info = BuildInfo(
                    recipe,
                    stats,
                    files,
                    lake_files,
                    lake_version,
                    closed_before=stamp(cutoff) if closed_only and cutoff is not None else None,
                )
            card = write_card(out, info)
            write_manifest(out, info, card, sources)
        if not incremental:
            remove_stale(out, [f.path for f in files.values()], STATE_DIR)
        clock.lap("write")
    timings = {**shaping_clock.spent, **clock.spent, "total": time.perf_counter() - started}
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


@contextmanager
def _arrow_memory() -> Iterator[None]:
    """Arrow's jemalloc pool for the build's own Arrow work, where pyarrow has it (the default
    pool stays for everything else once the build ends), unless $ARROW_DEFAULT_MEMORY_POOL
    names the pool to use. Builds allocate and free hundreds of MB per batch; measured on 1M
    messages, interleaved with builds on the default mimalloc pool: 5% less CPU time, 4% more
    examples per second, 10% less peak memory."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        yield
        return
    try:
        pool = pa.jemalloc_memory_pool()
    except NotImplementedError:  # pragma: no cover - a pyarrow built without jemalloc
        yield
        return
    previous = pa.default_memory_pool()
    pa.set_memory_pool(pool)
    try:
        yield
    finally:
        pa.set_memory_pool(previous)


def _shaped(
    engine: str,
    lake: Lake,
    lake_path: Path | str,
    recipe: Recipe,
    rules: Rules | None,
    skip: Callable[[pa.Table], pa.Table] | None,
    clock: _Clock,
) -> Iterator[ShapedBatch]:
    """The recipe's conversations shaped, batch by batch in build order, by ``engine``; the
    time until each is ready is ``clock``'s "shape" (the DuckDB engine's waits for its next
    batch are "query")."""
    if engine == "spark":
        from hooklake.spark.build import shaped_batches

        version = _lake_version(lake)
        yield from _timed(
            shaped_batches(lake_path, version.version if version else None, recipe),
            clock,
        )
        return
    # Closed here, not when garbage is collected: a failure while shaping must stop DuckDB's
    # producer thread before the lake closes.
    with closing(conversation_batches(lake, recipe, skip=skip, on_wait=clock.lap)) as tables:
        yield from _timed((shape_batch(table, recipe, rules) for table in tables), clock)


def _timed(batches: Iterator[ShapedBatch], clock: _Clock) -> Iterator[ShapedBatch]:
    """``batches``, the time until each is ready counted as ``clock``'s "shape"."""
    clock.restart()
    for shaped in batches:
        clock.lap("shape")
        yield shaped
        clock.restart()


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
