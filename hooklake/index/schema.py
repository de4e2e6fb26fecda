"""The index table's schema, how its files are laid out, and its rows as written."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any, Literal

import duckdb
import pyarrow as pa
from deltalake import BloomFilterProperties, ColumnProperties, WriterProperties

from hooklake import db, layout, tables
from hooklake.db import query_sql
from hooklake.storage import LakeLocation

#: The columns the ordering adds to the stored message columns, in the views' order.
ORDERED_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("role", pa.string()),
    ("_agent_evidence", pa.string()),
    ("_rn", pa.int64()),
    ("_started_at", pa.timestamp("us", tz="UTC")),
    ("_run", pa.int64()),
    ("conversation_id", pa.string()),
    ("position", pa.int64()),
)
_TS = pa.timestamp("us", tz="UTC")
#: What the index keeps on a conversation's first message (views/conversation_counts.sql) ...
CONVERSATION_SUMMARY = pa.struct(
    [
        ("ended_at", _TS),
        ("n_messages", pa.int64()),
        ("n_customer", pa.int64()),
        ("n_bot", pa.int64()),
        ("n_agent", pa.int64()),
        ("n_sys", pa.int64()),
        ("has_agent", pa.bool_()),
        ("channel_name", pa.string()),
        ("channel_type", pa.string()),
    ]
)
#: ... and on a turn's first message (views/turn_rows.sql, without conversation_id; and
#: views/turn_pair_rows.sql's answer on a customer turn).
TURN_SUMMARY = pa.struct(
    [
        ("turn_index", pa.int64()),
        ("role", pa.string()),
        ("sender_type", pa.string()),
        ("has_agent", pa.bool_()),
        ("text", pa.string()),
        ("started_at", _TS),
        ("ended_at", _TS),
        ("message_keys", pa.list_(pa.string())),
        ("n_messages", pa.int64()),
        ("first_position", pa.int64()),
        ("last_position", pa.int64()),
        # A customer turn's answer: the next turn (views/turn_pair_rows.sql).
        ("response", pa.string()),
        ("response_has_agent", pa.bool_()),
    ]
)
#: ... and on the message a hand-off starts at (views/handover_rows.sql, without the ids,
#: position and time_to_first_reply, which the view derives).
HANDOVER_SUMMARY = pa.struct(
    [
        ("agent_id", pa.int64()),
        ("assigned_at", _TS),
        ("unassigned_at", _TS),
        ("first_agent_reply_at", _TS),
        ("source", pa.string()),
    ]
)
BASE, INCREMENT = 0, 1

#: Generation of rows a reader computed itself and did not commit: sorts after every other.
PENDING = "~pending"

#: Rows per Parquet row group, and at most per page. A point query finds a customer's pages
#: through the page index (DuckDB skips the pages whose statistics rule the customer out), so
#: row groups can be large; every row group costs every query a footer entry per column, and
#: the footers, not the rows read, are what point queries slowed down with as a lake grew
#: (16k-row groups: 616 of them, 5.4 MB of footers, at 10M messages). On object storage, where
#: Arrow reads whole row groups, 32k-row groups halved what an update of a few customers of a
#: 10M-message index reads (9 customers: 1.8-2.0 -> 0.9 s), but the views took 1.5-1.7x as
#: long and a 3M one's conversation turns 0.126 -> 0.197 s: one size for both.
ROW_GROUP_ROWS = 131_072
PAGE_ROWS = 8_192
#: Compression of the index's files. On local disk, LZ4: an update after a day of traffic
#: decompresses nearly every page of the index (the customers it touches are on all of them),
#: and LZ4 decompresses several times faster than ZSTD. On a 10M-message index, against ZSTD:
#: that read 2.3-2.6 -> 1.8 s and the one-shot update 7.0-7.2 -> 6.1-6.4 s (under a 1GB memory
#: limit), conversations + pairs 0.71-0.72 -> 0.64-0.65 s, point queries 0.041-0.046 ->
#: 0.038-0.043 s, the rebuild the same (128.5 s), 1.6 -> 2.5 GB on disk. On object storage
#: every byte crosses the network and Arrow reads whole row groups: ZSTD. Files of either
#: codec read alike, so an index written before keeps working and its folds convert it.
LOCAL_COMPRESSION: Literal["LZ4_RAW", "ZSTD"] = "LZ4_RAW"
OBJECT_STORE_COMPRESSION: Literal["LZ4_RAW", "ZSTD"] = "ZSTD"
#: Columns whose row groups carry a Bloom filter (see file_layout).
BLOOM_COLUMNS = ("customer_id", "conversation_id")
#: Wide text columns written without min/max statistics: no query prunes on them (a payload's
#: or a hash's range spans every row group), and their minima and maxima, up to hundreds of
#: bytes each, took a fifth of the footers every query reads (10M-message base: 0.88 -> 0.72
#: MB; point queries' growth from 1M to 10M, 1.08x -> 1.06x, is within the noise). Nested
#: columns, such as the turns' texts, cannot be named to the Delta writer.
NO_STATISTICS = (
    "raw", "text", "payload", "data", "customer", "_shown", "message_key", "sentry_trace",
    "url", "sender_name",
)  # fmt: skip
#: Bytes per index data file. A point query opens every file of its kind and checks each
#: one's row groups (cached footers make that cheap, not free): with the Delta writer's
#: default of 100 MiB a 10M-message index had 16 message files against a 1M one's 2, and its
#: point queries took a few milliseconds longer.
FILE_BYTES = 2**30

#: Rows per Arrow batch handed to the Delta writer. The writer holds several batches at once,
#: outside DuckDB's memory limit: with 64k-row batches a rebuild of 1M simulated messages
#: peaked at 2.3 GB under a 1GB limit, with 8k-row ones at 1.7 GB, in the same time.
WRITE_BATCH_ROWS = 8_192

#: The views whose SQL an index write runs over the customers it writes.
COMPUTED_VIEWS = (
    "macros", "messages_unique", "messages_ordered", "conversation_counts", "turn_rows",
    "turn_pair_rows", "handover_rows",
)  # fmt: skip
#: The messages table's partition column, as DuckDB reads it from directory names.
DATE_PARTITION = {tables.PARTITION_COLUMN: "DATE"}
#: The index's partition columns, as DuckDB reads them from directory names.
PARTITIONS = {"layer": "TINYINT", "generation": "VARCHAR", "kind": "VARCHAR"}
PARTITION_BY = list(PARTITIONS)
HIVE_TYPES = db.hive_types_sql(PARTITIONS)
VERSION_TXN = "hooklake:index"
GAP_TXN = "hooklake:index-gap-us"


def index_schema() -> pa.Schema:
    """The index table's schema: the stored message columns (partition date included), the
    ordering's columns, the summaries, the part of the stored message builds render
    (``_shown``), then the index's own partition columns."""
    schema = tables.table_schema(layout.MESSAGES)
    for name, dtype in ORDERED_COLUMNS:
        schema = schema.append(pa.field(name, dtype))
    schema = schema.append(pa.field("_conversation", CONVERSATION_SUMMARY))
    schema = schema.append(pa.field("_turn", TURN_SUMMARY))
    schema = schema.append(pa.field("_handover", HANDOVER_SUMMARY))
    schema = schema.append(pa.field("_shown", pa.string()))
    schema = schema.append(pa.field("_since", _TS))
    schema = schema.append(pa.field("_until", _TS))
    schema = schema.append(pa.field("layer", pa.int8(), nullable=False))
    schema = schema.append(pa.field("generation", pa.string(), nullable=False))
    return schema.append(pa.field("kind", pa.string(), nullable=False))


def file_layout(loc: LakeLocation) -> dict[str, Any]:
    """How every index write to ``loc`` lays out its files: partitions, file size, row groups,
    pages, compression and Bloom filters (keyword arguments of ``write_deltalake``)."""
    # Bloom filters on the columns point queries name: a row group's min/max of customer_id
    # spans every customer when the group straddles two channels, so without them one
    # customer's messages read 2-3 row groups of a 10M-message index (1 with them, as at 1M).
    # ~4 KB per row group and column in the bench's index; 0.3% false positives measured.
    bloom = ColumnProperties(
        bloom_filter_properties=BloomFilterProperties(True, fpp=0.01, ndv=ROW_GROUP_ROWS // 8)
    )
    properties = WriterProperties(
        compression=LOCAL_COMPRESSION if loc.local is not None else OBJECT_STORE_COMPRESSION,
        max_row_group_size=ROW_GROUP_ROWS,
        data_page_row_count_limit=PAGE_ROWS,
        column_properties={
            **{column: bloom for column in BLOOM_COLUMNS},
            **{column: ColumnProperties(statistics_enabled="NONE") for column in NO_STATISTICS},
        },
    )
    return {
        "partition_by": PARTITION_BY,
        "writer_properties": properties,
        "target_file_size": FILE_BYTES,
    }


def written_rows(
    con: duckdb.DuckDBPyConnection, layer: int, generation: str
) -> pa.RecordBatchReader:
    """``hooklake_messages_ordered`` as the index stores it (queries/index_write.sql)."""
    con.execute(query_sql("index_ordered_once"))
    rel = con.sql(query_sql("index_write"), params={"layer": layer, "generation": generation})
    return as_index_rows(rel)


def as_index_rows(rel: duckdb.DuckDBPyRelation) -> pa.RecordBatchReader:
    """``rel``'s rows in the index's schema, batch by batch (:data:`WRITE_BATCH_ROWS`)."""
    schema = index_schema()
    reader = rel.to_arrow_reader(WRITE_BATCH_ROWS)
    return pa.RecordBatchReader.from_batches(schema, (b.cast(schema) for b in reader))


def new_generation(messages_version: int) -> str:
    return f"{messages_version:012d}-{secrets.token_hex(4)}"


def microseconds(gap: timedelta) -> int:
    """``gap`` in whole microseconds, as the views' session gap variable holds it."""
    return (gap.days * 86_400 + gap.seconds) * 1_000_000 + gap.microseconds
