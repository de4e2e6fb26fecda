"""``hooklake build``: a recipe and a lake in, a training-ready dataset folder out.

The steps, in order:

1. **Pick** the conversations the recipe selects (one small row each) and assign every
   group (customer or conversation) to train, validation or test (:mod:`.split`).
2. **Stream** their messages out of DuckDB in Arrow batches, ordered by conversation and
   position, and cut the stream into conversations: only one conversation is in Python at a
   time, so memory does not grow with the lake (DuckDB spills its sort past ``memory_limit``).
3. **Shape** each conversation: render messages (:mod:`.render`), scrub personal data
   (:mod:`.redact`), merge into turns, make examples, drop duplicates (:mod:`.dedupe`). The
   ``preference`` and ``feedback`` formats make their rows from customers' signals instead
   (:mod:`.signals`): hand-offs after a bot failure, ratings, fallbacks.
4. **Write** every example to its split's file (:mod:`.writers`; a line that would not pass
   the format's checks stops the build with :class:`~hooklake.errors.BuildError`), then the
   card and the manifest (:mod:`.card`).

Everything is ordered and seeded, so the same lake and recipe give byte-identical files.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

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
from hooklake.datasets.dedupe import Deduper
from hooklake.datasets.formats import writer_class, writer_for
from hooklake.datasets.lake import AsOf, Lake
from hooklake.datasets.recipe import SPLITS, Recipe, load_recipe
from hooklake.datasets.redact import Redactor, known_values
from hooklake.datasets.render import (
    Example,
    Message,
    Rendered,
    conversation_examples,
    merge_turns,
    render_message,
    trim_turns,
)
from hooklake.datasets.signals import Rules, signal_examples
from hooklake.datasets.split import assign_splits
from hooklake.datasets.writers import OutputFile
from hooklake.errors import BuildError

#: Rows per Arrow batch pulled from DuckDB: big enough to amortise the hop into Python.
BATCH_ROWS = 32_768
#: DuckDB's memory limit during a build unless $HOOKLAKE_MEMORY_LIMIT or the caller says
#: otherwise; past it the sort spills to disk instead of growing with the lake.
DEFAULT_MEMORY_LIMIT = "512MB"


@dataclass
class BuildReport:
    """What a build produced and what it cost."""

    name: str
    format: str
    out_dir: Path
    files: dict[str, OutputFile]
    card: Path
    manifest: Path
    stats: DatasetStats
    #: Seconds per stage: select (pick conversations, split), query (waiting on DuckDB for
    #: the next batch), stream (Arrow to Python, grouping), render, redact, write, total.
    timings: dict[str, float] = field(default_factory=dict)

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


def _params(recipe: Recipe) -> dict[str, Any]:
    src = recipe.source
    return {
        "channels": list(src.channels) or None,
        "hooks": list(src.hooks) or None,
    }


def _select(lake: Lake, recipe: Recipe) -> pa.Table:
    """The conversations to build from, their split codes and message counts."""
    params = {
        **_params(recipe),
        "since": recipe.source.since,
        "until": recipe.source.until,
        "group_by": recipe.split.group_by,
    }
    with lake_errors("cannot select the conversations of the recipe"):
        rel = lake.connection.sql(sql_text("build_conversations"), params=params)
        # DuckDB 1.4 renamed arrow() / fetch_record_batch() to to_arrow_table() / _reader().
        picked = rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.arrow()
    groups = picked.column("group_rank").to_numpy()
    codes = assign_splits(groups, recipe.split.fractions(), recipe.split.seed)
    return pa.table(
        {
            "conversation_id": picked.column("conversation_id"),
            "split": pa.array(codes, pa.int8()),
            "group_rank": picked.column("group_rank"),
            "n_messages": picked.column("n_messages"),
        }
    )


@dataclass
class _Conversation:
    """The rows of one conversation while it is being collected from the stream."""

    conversation_id: str
    channel_id: int | None
    customer_id: int | None
    split: int
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    customers: set[str] = field(default_factory=set)


def _conversations(
    lake: Lake, recipe: Recipe, selection: pa.Table, bar: Any, clock: _Clock
) -> Iterator[_Conversation]:
    """Stream the selected conversations' messages and yield them one conversation at a time."""
    con = lake.connection
    con.register("hooklake_build_selection", selection.select(["conversation_id", "split"]))
    params = {**_params(recipe), "with_customer": recipe.redact.pii}
    current: _Conversation | None = None
    try:
        with lake_errors("cannot read the recipe's messages from the lake"):
            clock.lap("stream")
            rel = con.sql(sql_text("build_messages"), params=params)
            if hasattr(rel, "to_arrow_reader"):
                batches = iter(rel.to_arrow_reader(BATCH_ROWS))
            else:
                batches = iter(rel.fetch_record_batch(BATCH_ROWS))
            clock.lap("query")
            while True:
                clock.lap("stream")
                batch = next(batches, None)
                clock.lap("query")
                if batch is None:
                    break
                cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
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
                            yield current
                        current = _Conversation(conv_id, channel, customer, split)
                    current.rows.append((key, sender, kind, text, url, message, payload))
                    if cust is not None:
                        current.customers.add(cust)
                bar.update(batch.num_rows)
        if current is not None:
            yield current
    finally:
        con.unregister("hooklake_build_selection")


def _lake_version(lake: Lake) -> LakeVersion | None:
    # Builds read the messages table only: its version is what a rebuild needs.
    for v in lake.versions():
        if v.table == layout.MESSAGES:
            stamp = v.committed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            return LakeVersion(v.table, v.version, stamp)
    return None


def _lake_files(lake: Lake) -> list[LakeFile]:
    # The Delta log records every file's row count: no file needs opening.
    return [LakeFile(f"{layout.MESSAGES}/{f.path}", f.rows) for f in lake.files(layout.MESSAGES)]


def _shape(
    conv: _Conversation,
    recipe: Recipe,
    redactor: Redactor,
    clock: _Clock,
    rules: Rules | None = None,
    notes: Counter[str] | None = None,
) -> tuple[list[Example], str | None]:
    """One conversation's examples, or why it gives none. With ``rules`` the examples come
    from customers' signals (:mod:`.signals`) and ``notes`` adds up what was found."""
    spec = recipe.examples
    rendered: list[Rendered] = []
    for key, sender, kind, text, url, message, payload in conv.rows:
        r = render_message(key, sender, kind, text, url, message, spec.media)
        if r is not None:
            r.kind, r.payload = kind or "", payload
            rendered.append(r)
    clock.lap("render")
    if recipe.redact.pii and rendered:
        known = known_values(conv.customers)
        for r in rendered:
            r.text = redactor.redact(r.text, known)
            if r.payload:
                r.payload = redactor.redact(r.payload, known)
        clock.lap("redact")
    if rules is not None:
        found = signal_examples(
            rendered,
            recipe,
            rules,
            conversation_id=conv.conversation_id,
            channel_id=conv.channel_id,
            customer_id=conv.customer_id,
        )
        if notes is not None:
            notes.update(found.notes)
        clock.lap("render")
        return found.examples, None if found.examples else "conversations_without_a_signal"
    turns = trim_turns(merge_turns(rendered, spec.agent_turns, split_authors=recipe.split_authors))
    if not turns:
        return [], "conversations_without_a_reply_to_the_user"
    if sum(t.role == "user" for t in turns) < recipe.filter.min_user_turns:
        return [], "conversations_with_too_few_user_turns"
    examples = conversation_examples(
        turns,
        spec,
        conversation_id=conv.conversation_id,
        channel_id=conv.channel_id,
        customer_id=conv.customer_id,
    )
    clock.lap("render")
    return examples, None if examples else "conversations_without_a_trained_reply"


def _compared(ex: Example) -> list[Message]:
    """What makes two examples duplicates: their messages, plus the rejected reply and the
    label of preference and feedback rows."""
    out = [*ex.messages, *(ex.rejected or [])]
    if ex.label is not None:
        out.append(Message("system", f"label={ex.label}"))
    return out


def _open_sources(tmp_dir: Path) -> dict[str, IO[bytes]]:
    return {split: open(tmp_dir / f"{split}.sources", "wb", buffering=1 << 20) for split in SPLITS}


def build(
    recipe: Recipe | Path | str,
    lake_path: Path | str,
    out_dir: Path | str | None = None,
    progress: bool = True,
    *,
    memory_limit: str | None = None,
    threads: int | None = None,
    as_of: AsOf | None = None,
    engine: str = "duckdb",
) -> BuildReport:
    """Build the dataset ``recipe`` describes from the lake at ``lake_path`` into ``out_dir``
    (default ``out/<recipe name>``), from the latest version of its tables or the one
    ``as_of`` names (see :class:`Lake`). Returns what was written; raises
    :class:`~hooklake.errors.BuildError` when no valid dataset can be made, leaving earlier
    outputs in ``out_dir`` as they were. ``engine="spark"`` builds the same files as a Spark
    job (:mod:`hooklake.spark.build`)."""
    if engine != "duckdb":
        from hooklake.spark.build import build_on

        return build_on(engine, recipe, lake_path, out_dir, progress, as_of=as_of)
    started = time.perf_counter()
    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    out = Path(out_dir) if out_dir is not None else Path("out") / recipe.name
    limit = memory_limit or os.environ.get("HOOKLAKE_MEMORY_LIMIT") or DEFAULT_MEMORY_LIMIT
    gap = timedelta(minutes=recipe.conversations.gap_minutes)
    clock = _Clock()
    stats = DatasetStats()
    redactor = Redactor()
    deduper = Deduper() if recipe.filter.dedupe else None
    rules = Rules(recipe) if writer_class(recipe.format).from_signals else None

    opened = Lake(lake_path, session_gap=gap, memory_limit=limit, threads=threads, as_of=as_of)
    with opened as lake:
        lake_files = _lake_files(lake)
        lake_version = _lake_version(lake)
        selection = _select(lake, recipe)
        clock.lap("select")
        if selection.num_rows == 0:
            raise BuildError(
                f"recipe {recipe.origin or recipe.name} selects no conversations from lake "
                f"{lake.path} ({sum(f.rows for f in lake_files)} stored messages): check "
                "source.channels, source.hooks, source.since and source.until"
            )
        stats.conversations_read = selection.num_rows
        codes = selection.column("split").to_numpy()
        ranks = selection.column("group_rank").to_numpy()
        for code, name in enumerate(SPLITS):
            stats.groups[name] = len(set(ranks[codes == code].tolist()))
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
            sources = _open_sources(Path(tmp))
            try:
                for conv in _conversations(lake, recipe, selection, bar, clock):
                    clock.lap("stream")
                    stats.messages_read += len(conv.rows)
                    examples, dropped = _shape(
                        conv, recipe, redactor, clock, rules, stats.signal_notes
                    )
                    if dropped:
                        stats.dropped[dropped] += 1
                        continue
                    split = SPLITS[conv.split]
                    used = False
                    for ex in examples:
                        if deduper is not None and not deduper.first_time(_compared(ex)):
                            stats.dropped["duplicate_examples"] += 1
                            continue
                        writer.write(split, ex)
                        sources[split].write(orjson.dumps(ex.sources or ex.source_keys) + b"\n")
                        stats.splits[split].add(ex)
                        stats.add_signal(ex)
                        used = True
                    stats.conversations_used += used
                    clock.lap("write")
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
                        if rules is not None
                        else "check filter.min_user_turns, examples.targets and "
                        "examples.agent_turns"
                    )
                )
            files = writer.close()
            stats.redactions.update(redactor.counts)
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
    return BuildReport(
        name=recipe.name,
        format=recipe.format,
        out_dir=out,
        files=files,
        card=out / CARD,
        manifest=out / MANIFEST,
        stats=stats,
        timings=timings,
    )
