"""Row extraction: journal records -> message rows (a ``MESSAGE_SCHEMA`` table) and reject rows.

The bodies of a whole segment go through one DuckDB query (``sql/extract.sql``) that parses
each document once. Which keys it parses, and in which order of precedence a column takes
them, comes from the field table :data:`hooklake.fields.FIELDS`, the same table the request
check (:mod:`hooklake.collector.check`) judges ids by: the SQL's generated parts are built
here from it, once per process.

Every message the collector acknowledged comes out as a row or as a reject row saying why.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.collector.journal import Record
from hooklake.db import connect, query_sql
from hooklake.fields import FIELDS, Field, Place
from hooklake.layout import MESSAGE_SCHEMA, REJECT_SCHEMA

Row = tuple[Any, ...]

_BODIES = pa.schema(
    [
        ("body", pa.string()),
        ("hook", pa.string()),
        ("received_at", pa.int64()),
        ("source", pa.string()),
        ("sentry_trace", pa.string()),
        ("rec", pa.int32()),
    ]
)

# --------------------------------------------------------------------------- generated SQL

Struct = dict[str, Any]

# What every message is parsed for, whatever the field table says.
_MESSAGE_STRUCT: Struct = {
    "type": "VARCHAR",
    "timestamp": "DOUBLE",
    "data": "JSON",
    "customer": "JSON",
    "channel": {"id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR"},
    "sender": {"id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR"},
    "_raw": {"uuid": "VARCHAR", "author_type": "VARCHAR", "extra": {}},
}

# How each place is reached in extract.sql (m: the message, d: its data, c: its customer, env:
# the envelope, whose channel and agent stand in for APIchat messages').
_PLACE_SQL: dict[Place, str] = {
    "data": "d.{key}",
    "_raw": "m._raw.{key}",
    "_raw.extra": "m._raw.extra.{key}",
    "message": "m.{key}",
    "customer": "c.{key}",
    "channel": "coalesce(m.channel.{key}, env.channel.{key})",
    "sender": "CASE WHEN apichat THEN env.agent.{key} ELSE m.sender.{key} END",
}


def _sql_type(field: Field, first: bool) -> str:
    # A strict id in its own place was judged by the request check: read it as a number. Any
    # other id or number is read as text and converted only when it is one (hl_int, hl_number).
    return "BIGINT" if field.kind == "id" and field.strict and first else "VARCHAR"


def _read(field: Field, place: Place, key: str, first: bool) -> str:
    value = _PLACE_SQL[place].format(key=f'"{key}"')
    if field.kind == "text":
        return f"nullif({value}, '')"
    if field.kind == "number":
        return f"hl_number({value})"
    return value if _sql_type(field, first) == "BIGINT" else f"hl_int({value})"


def _structs() -> dict[Place, Struct]:
    message: Struct = orjson.loads(orjson.dumps(_MESSAGE_STRUCT))
    structs: dict[Place, Struct] = {
        "message": message,
        "_raw": message["_raw"],
        "_raw.extra": message["_raw"]["extra"],
        "channel": message["channel"],
        "sender": message["sender"],
        "data": {},
        "customer": {},
    }
    for field in FIELDS:
        if field.column is None:
            continue
        for i, (place, key) in enumerate(field.sources):
            struct, wanted = structs[place], _sql_type(field, i == 0)
            if struct.setdefault(key, wanted) != wanted:
                raise AssertionError(f"{place}.{key} is read as two types")
    return structs


def _columns() -> str:
    exprs = []
    for field in FIELDS:
        if field.column is None:
            continue
        reads = [_read(field, p, k, i == 0) for i, (p, k) in enumerate(field.sources)]
        expr = reads[0] if len(reads) == 1 else f"coalesce({', '.join(reads)})"
        exprs.append(f"{expr} AS {field.column}")
    return ",\n        ".join(exprs)


def extraction_sql() -> str:
    """``sql/extract.sql`` with its generated parts filled in from the field table."""
    structs = _structs()
    return query_sql(
        "extract",
        message_struct=orjson.dumps(structs["message"]).decode(),
        data_struct=orjson.dumps(structs["data"]).decode(),
        customer_struct=orjson.dumps(structs["customer"]).decode(),
        field_columns=_columns(),
    )


_SQL = extraction_sql()
_local = threading.local()


def _connection() -> duckdb.DuckDBPyConnection:
    """This thread's DuckDB connection with the extraction view ready: a flusher runs every
    few seconds, so setting it up once matters."""
    con: duckdb.DuckDBPyConnection | None = getattr(_local, "con", None)
    if con is None:
        # One thread: the flusher shares the machine with the collector answering requests.
        con = connect(threads=1)
        con.register("bodies", _BODIES.empty_table())
        con.execute(_SQL)
        _local.con = con
    return con


# --------------------------------------------------------------------------- records -> rows


def source_of(prefix: str, offset: int) -> str:
    """Lineage of a record: segment and byte offset, zero-padded so text order is file order
    (the views use it as the last tie-break between equal arrival times)."""
    return f"{prefix}@{offset:012d}"


def reject_row(rec: Record, source: str, reason: str, index: int | None) -> Row:
    head = rec.header
    return (
        head["t"],
        head["hook"],
        reason,
        index,
        rec.body,
        orjson.dumps(head.get("h") or {}).decode(),
        source,
    )


def _extract(
    con: duckdb.DuckDBPyConnection, records: list[Record], prefix: str, first: int = 0
) -> pa.Table:
    bodies = pa.Table.from_pydict(
        {
            # Bodies were valid JSON, hence UTF-8, when accepted: a cheap check, no copy.
            "body": pa.array([r.body for r in records], pa.binary()).cast(pa.string()),
            "hook": [r.header["hook"] for r in records],
            "received_at": [r.header["t"] for r in records],
            "source": [source_of(prefix, r.offset) for r in records],
            "sentry_trace": [(r.header.get("h") or {}).get("sentry-trace") for r in records],
            "rec": list(range(first, first + len(records))),
        },
        schema=_BODIES,
    )
    con.register("bodies", bodies)
    try:
        return con.sql("SELECT * FROM hl_messages").to_arrow_table()
    finally:
        con.register("bodies", _BODIES.empty_table())


def records_to_tables(records: Iterable[Record], prefix: str) -> tuple[pa.Table, list[Row]]:
    """The message rows (a MESSAGE_SCHEMA table) and reject rows of journal records."""
    accepted: list[Record] = []
    rejects: list[Row] = []
    for rec in records:
        if rec.header.get("kind") == "reject":
            src = source_of(prefix, rec.offset)
            rejects.append(reject_row(rec, src, rec.header["reason"], rec.header.get("index")))
        else:
            accepted.append(rec)
    if not accepted:
        return MESSAGE_SCHEMA.empty_table(), rejects
    con = _connection()
    try:
        table = _extract(con, accepted, prefix)
    except (duckdb.Error, pa.ArrowInvalid):
        # One body the bulk parser refuses must not hold back the others: go one by one.
        parts = []
        for i, rec in enumerate(accepted):
            try:
                parts.append(_extract(con, [rec], prefix, i))
            except (duckdb.Error, pa.ArrowInvalid) as exc:
                src = source_of(prefix, rec.offset)
                rejects.append(reject_row(rec, src, f"unreadable at flush: {exc}", None))
        if not parts:
            return MESSAGE_SCHEMA.empty_table(), rejects
        table = pa.concat_tables(parts)
    bad = pc.or_(pc.is_null(table["ts"]), pc.is_null(table["customer_id"]))
    bad_indices: dict[int, set[int]] = defaultdict(set)
    if pc.any(bad).as_py():
        for row in table.filter(bad).select(["rec", "message_index"]).to_pylist():
            bad_indices[row["rec"]].add(row["message_index"])
            rec = accepted[row["rec"]]
            reason = "timestamp or customer.id unreadable at flush"
            rejects.append(
                reject_row(rec, source_of(prefix, rec.offset), reason, row["message_index"])
            )
        table = table.filter(pc.invert(bad))
    # Every message the collector acknowledged must come out as a row or a reject. The check
    # and the bulk parser can read a body differently (duplicate keys: last vs first wins).
    promised = np.array([rec.header.get("n", 0) for rec in accepted], dtype=np.int64)
    read = np.bincount(table["rec"].to_numpy(), minlength=len(accepted))
    read += np.array([len(bad_indices[i]) for i in range(len(accepted))], dtype=np.int64)
    for i in np.flatnonzero(read < promised).tolist():
        rec = accepted[i]
        rows = pc.equal(table["rec"], i)
        seen = set(table.filter(rows)["message_index"].to_pylist()) | bad_indices[i]
        for index in sorted(set(range(int(promised[i]))) - seen):
            reason = (
                f"message {index} of {promised[i]} accepted but unreadable at flush "
                "(duplicate keys?)"
            )
            rejects.append(reject_row(rec, source_of(prefix, rec.offset), reason, index))
    return _as_message_table(table), rejects


def _as_message_table(table: pa.Table) -> pa.Table:
    columns = []
    for f in MESSAGE_SCHEMA:
        col = table[f.name]
        if pa.types.is_timestamp(f.type):
            col = _as_timestamps(col)
        columns.append(col.cast(f.type) if col.type != f.type else col)
    return pa.Table.from_arrays(columns, schema=MESSAGE_SCHEMA)


def reject_table(rows: list[Row]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    arrays = [pa.array(c, type=f.type) for c, f in zip(columns, REJECT_SCHEMA, strict=True)]
    return pa.Table.from_arrays(arrays, schema=REJECT_SCHEMA)


def _as_timestamps(us: pa.ChunkedArray) -> pa.ChunkedArray:
    """Epoch microseconds as UTC timestamps, without copying."""
    ts = pa.timestamp("us", tz="UTC")
    return pa.chunked_array([c.view(ts) for c in us.cast(pa.int64()).chunks], type=ts)


__all__ = ["extraction_sql", "records_to_tables", "reject_row", "reject_table", "source_of"]
