"""Building lakes for the lake, view and compaction tests.

Two ways, both producing real Parquet through the real write path:

- :func:`ingest_case` turns a JSON case file from ``tests/cases/lake/`` into Landbot bodies
  (new or old payload shape) and stores them with the collector's ``ingest_bodies``, one
  delivery group per arrival time, exactly as the HTTP collector would;
- :func:`row` / :func:`write_rows` build message rows of ``layout.MESSAGE_SCHEMA`` directly,
  for property tests that need many lakes fast.

Also :func:`reference_views`, a plain-Python statement of what the views must compute.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from hooklake import layout, legacy, tables
from hooklake.collector.check import BodyError, check_body
from hooklake.collector.extract import records_to_tables, reject_table
from hooklake.collector.ingest import ingest_bodies
from hooklake.collector.journal import (
    SegmentWriter,
    encode_record,
    read_segment,
    sealed_segments,
    segment_number,
    writer_dirs,
)
from hooklake.storage import lake_location

CASES = Path(__file__).parent.parent / "cases" / "lake"
ROLE = {"customer": "user", "bot": "assistant", "agent": "assistant"}
AUTHOR = {"customer": "user", "bot": "bot", "agent": "agent", "sys": "sys"}


def ts_of(value: str | float) -> float:
    """Epoch seconds from an ISO time (``Z`` or offset) or a number."""
    if isinstance(value, int | float):
        return float(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def landbot_body(msg: dict[str, Any], case: dict[str, Any]) -> bytes:
    """A MessageHooks POST body for one message of a case, in the new or the old shape.

    Keys a case message may give to reproduce what real traffic does (all optional):
    ``place`` where its ``action``/``payload``/``url`` sit (``data`` (default: data and
    ``_raw.extra``), ``_raw``, ``extra`` or ``top``); ``extra`` the exact ``_raw.extra`` (null,
    typing settings); ``data``/``raw``/``top`` keys added to data, ``_raw`` or the message;
    ``string_ids`` ids as decimal strings; ``name`` the sender's and customer's name;
    ``samurai``; ``no_agent_key`` a customer object without ``agent_id``; ``no_sender`` only
    ``_raw.author_type`` says who wrote it.
    """
    channel = {**{"name": "Support bot", "type": "landbot"}, **case.get("channel", {})}
    customer_id = msg.get("customer", case.get("customer", 1000))
    sender = msg["sender"]
    ts = ts_of(msg["t"])
    if channel["type"] == "whatsapp" and sender == "customer":
        ts = float(int(ts))  # WhatsApp customer timestamps are whole seconds
    mtype = msg.get("type", "event" if sender == "sys" else "text")
    content = {k: msg[k] for k in ("action", "payload", "url") if k in msg}
    place = msg.get("place", "data")
    data: dict[str, Any] = {"body": msg["text"], **msg.get("data", {})}
    if place == "data":
        data.update(content)
    sender_id = {"customer": customer_id, "bot": 1819347, "sys": 0}.get(sender, msg.get("agent"))
    name = msg.get("name", f"Visitor #{customer_id}")
    customer: dict[str, Any] = {"id": customer_id, "name": name, "agent_id": msg.get("agent")}
    if msg.get("no_agent_key"):
        del customer["agent_id"]
    timestamp: float | int = int(ts) if ts == int(ts) else ts
    extra: Any = {"action": msg["action"]} if "action" in msg and place == "data" else {}
    if place == "extra":
        extra = dict(content)
    if "extra" in msg:
        extra = msg["extra"]
    raw: dict[str, Any] = {
        "extra": extra,
        "chat": customer_id + 1,
        "type": mtype,
        "channel": channel["id"],
        "timestamp": timestamp,
        "message": msg["text"],
    }
    if place == "_raw":
        raw.update(content)
    if msg.get("shape") == "legacy":  # the help-centre sample: no uuid, readed_at
        raw["readed_at"] = ts + 0.002
        raw["read"] = True
    else:
        raw.update(
            uuid=msg.get("key") or str(uuid.uuid5(uuid.NAMESPACE_URL, msg["text"])),
            author_type=AUTHOR[sender],
            seq=msg.get("seq"),
            read=False,
        )
    if "samurai" in msg:
        raw["samurai"] = msg["samurai"]
    raw.update(msg.get("raw", {}))
    message: dict[str, Any] = {
        "_raw": raw,
        "type": mtype,
        "data": data,
        "timestamp": timestamp,
        "sender": {"id": sender_id, "name": msg.get("name", "x"), "type": sender},
        "customer": customer,
        "channel": channel,
    }
    if place == "top":
        message.update(content)
    message.update(msg.get("top", {}))
    if msg.get("no_sender"):
        del message["sender"]
    if msg.get("string_ids"):
        for obj, key in ((message["sender"], "id"), (customer, "id"), (channel, "id")):
            if obj.get(key) is not None:
                obj[key] = str(obj[key])
        if customer.get("agent_id") is not None:
            customer["agent_id"] = str(customer["agent_id"])
        if raw.get("samurai") is not None:
            raw["samurai"] = str(raw["samurai"])
    return orjson.dumps({"messages": [message]})


def load_case(name: str) -> dict[str, Any]:
    case: dict[str, Any] = json.loads((CASES / name).read_text())
    return case


def ingest_case(lake: Path, case: dict[str, Any]) -> None:
    """Store a case's deliveries in arrival order, as the collector would.

    A message's ``arrive`` is its delay in seconds after its time ``t`` (default 0.1), or a
    list of delays for a message Landbot delivered more than once. Each arrival time is one
    journal flush, so deliveries land in separate files like a collector's segments.
    """
    groups: dict[float, list[bytes]] = defaultdict(list)
    for msg in case["messages"]:
        body = landbot_body(msg, case)
        delays = msg.get("arrive", 0.1)
        for delay in delays if isinstance(delays, list) else [delays]:
            groups[ts_of(msg["t"]) + delay].append(body)
    for arrive in sorted(groups):
        ingest_bodies(lake, groups[arrive], received_at_us=round(arrive * 1_000_000))


# --------------------------------------------------------------------------- direct rows

_T0 = datetime(2025, 3, 1, 23, 0, tzinfo=UTC)


def row(
    key: str,
    *,
    customer: int = 1,
    channel: int = 10,
    t: float = 0.0,
    sender: str = "customer",
    text: str | None = None,
    seq: int | None = None,
    arrive: float | None = None,
    source: str | None = None,
    type: str = "text",
    action: str | None = None,
    agent_id: int | None = None,
) -> dict[str, Any]:
    """One MESSAGE_SCHEMA row; ``t`` and ``arrive`` are seconds after 2025-03-01 23:00 UTC."""
    ts = _T0 + timedelta(seconds=t)
    received = _T0 + timedelta(seconds=t if arrive is None else arrive)
    return {
        "message_key": key,
        "hook": "default",
        "channel_id": channel,
        "channel_name": "Support bot",
        "channel_type": "landbot",
        "customer_id": customer,
        "chat_id": customer + 1,
        "ts": ts,
        "seq": seq,
        "type": type,
        "sender_type": sender,
        "sender_id": customer if sender == "customer" else 7,
        "sender_name": "x",
        "text": key if text is None else text,
        "payload": None,
        "action": action,
        "url": None,
        "agent_id": agent_id,
        "data": "{}",
        "customer": "{}",
        "raw": "{}",
        "sentry_trace": None,
        "received_at": received,
        "source": source or f"test/{key}@{int((received - _T0).total_seconds() * 1e6):015d}",
    }


def write_rows(lake: Path, rows: list[dict[str, Any]], name: str = "part") -> list[str]:
    """Append rows to the lake's messages table in one commit (transaction id ``name``), in
    their UTC date partitions. Returns the data files the commit added (relative paths)."""
    loc = lake_location(lake)
    before = tables.open_table(loc, layout.MESSAGES)
    old = {f.path for f in tables.data_files(before)} if before is not None else set()
    data = pa.Table.from_pylist(rows, schema=layout.MESSAGE_SCHEMA)
    tables.append(loc, layout.MESSAGES, tables.with_partition(layout.MESSAGES, data), name)
    after = tables.open_table(loc, layout.MESSAGES)
    assert after is not None
    return sorted(f.path for f in tables.data_files(after) if f.path not in old)


def write_legacy_rows(
    lake: Path, rows: list[dict[str, Any]], name: str = "part", version: int = 2
) -> list[Path]:
    """Write rows as Hooklake 0.1's flush did: plain Parquet files in ``date=`` directories, one
    per date, named ``<name>.v2.parquet`` (schema version 2) or ``<name>.parquet`` (version 1,
    without the columns version 2 added)."""
    schema = layout.MESSAGE_SCHEMA if version == 2 else legacy.MESSAGE_SCHEMA_V1
    by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_date[r["ts"].astimezone(UTC).strftime("%Y-%m-%d")].append(r)
    out = []
    for date, part in sorted(by_date.items()):
        directory = layout.table_dir(lake, layout.MESSAGES) / f"date={date}"
        path = directory / (f"{name}.v2.parquet" if version == 2 else f"{name}.parquet")
        data = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in part], schema)
        layout.write_table(data, path)
        out.append(path)
    return out


# --------------------------------------------------------------------------- reference


@dataclass
class Reference:
    """What the views must contain, computed the obvious way in Python."""

    #: message_key -> (conversation number per customer stream, position)
    placement: dict[str, tuple[tuple[int, int, int], int]] = field(default_factory=dict)
    #: conversation -> keys in order
    conversations: dict[tuple[int, int, int], list[str]] = field(default_factory=dict)
    #: conversation -> [(role, [keys])]
    turns: dict[tuple[int, int, int], list[tuple[str, list[str]]]] = field(default_factory=dict)


def reference_views(rows: list[dict[str, Any]], gap: timedelta) -> Reference:
    first: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["received_at"], r["source"])):
        first.setdefault((r["channel_id"], r["customer_id"], r["message_key"]), r)
    streams: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for r in first.values():
        streams[(r["channel_id"], r["customer_id"])].append(r)
    ref = Reference()
    for (channel, customer), stream in streams.items():
        stream.sort(
            key=lambda r: (
                r["ts"],
                r["seq"] is None,
                r["seq"] or 0,
                r["received_at"],
                r["source"],
            )
        )
        n = 0
        prev = None
        for r in stream:
            if prev is None or r["ts"] - prev > gap:
                n += 1
                ref.conversations[(channel, customer, n)] = []
            prev = r["ts"]
            keys = ref.conversations[(channel, customer, n)]
            keys.append(r["message_key"])
            ref.placement[r["message_key"]] = ((channel, customer, n), len(keys))
            role = ROLE.get(r["sender_type"])
            if role is None:
                continue
            turns = ref.turns.setdefault((channel, customer, n), [])
            if turns and turns[-1][0] == role:
                turns[-1][1].append(r["message_key"])
            else:
                turns.append((role, [r["message_key"]]))
    return ref


def test_write_rows_puts_each_row_in_the_partition_of_its_utc_date(tmp_path: Path) -> None:
    rows = [row("a", t=0), row("b", t=3600 + 5)]  # 23:00 and 00:00:05 the next day
    files = write_rows(tmp_path, rows)
    assert [f.split("/")[0] for f in files] == ["date=2025-03-01", "date=2025-03-02"]


def test_reference_dedupes_orders_and_splits() -> None:
    rows = [
        row("b", t=10, arrive=11),
        row("a", t=10, seq=None, arrive=10.5),
        row("b", t=10, arrive=30),  # a retry
        row("c", t=10 + 1801, sender="bot"),
    ]
    ref = reference_views(rows, timedelta(minutes=30))
    assert ref.conversations == {(10, 1, 1): ["a", "b"], (10, 1, 2): ["c"]}
    assert ref.turns[(10, 1, 1)] == [("user", ["a", "b"])]


# --------------------------------------------------------------------------- 0.1 lakes


def legacy_write_tables(
    lake: Path, name: str, messages: pa.Table, rejects: list[Any], version: int = 2
) -> list[Path]:
    """Hooklake 0.1's flush output, as its ``write_tables`` wrote it: per date partition one
    Parquet file named after the segment (``<name>.v2.parquet``; 0.1.0 wrote ``<name>.parquet``
    without the version-2 columns, ``version=1``)."""
    out: list[Path] = []
    sort = [("channel_id", "ascending"), ("customer_id", "ascending"), ("ts", "ascending")]
    if version == 1:
        messages = messages.select(legacy.MESSAGE_SCHEMA_V1.names)
    for table_name, table, col in (
        (layout.MESSAGES, messages, "ts"),
        (layout.REJECTED, reject_table(rejects) if rejects else None, "received_at"),
    ):
        if table is None or table.num_rows == 0:
            continue
        days = pc.strftime(table[col], "%Y-%m-%d")
        for day in sorted(pc.unique(days).to_pylist()):
            part = table.filter(pc.equal(days, day))
            if table_name == layout.MESSAGES:
                part = part.sort_by(sort)
            suffix = ".v2.parquet" if table_name == layout.MESSAGES and version == 2 else ".parquet"
            path = layout.table_dir(lake, table_name) / f"date={day}" / f"{name}{suffix}"
            layout.write_table(part, path)
            out.append(path)
    return out


def legacy_ingest(
    lake: Path, bodies: list[bytes], *, received_at_us: int, version: int = 2
) -> list[Path]:
    """Store ``bodies`` the way Hooklake 0.1 did: journal them, then flush each sealed segment
    with 0.1's write path (:func:`legacy_write_tables`)."""
    scratch = lake / "_journal"
    writer = SegmentWriter(lake)
    writer.open()
    try:
        for raw in bodies:
            header: dict[str, Any] = {"kind": "message", "hook": "default", "t": received_at_us}
            header["h"] = {}
            try:
                header["n"] = check_body(raw)
            except BodyError as exc:
                header.update(kind="reject", reason=str(exc), code=exc.code, index=exc.index)
            writer.write(encode_record(header, raw))
    finally:
        writer.close()
    out: list[Path] = []
    for directory in writer_dirs(lake):
        for seg in sealed_segments(directory):
            records, _ = read_segment(seg)
            messages, rejects = records_to_tables(records, f"{directory.name}/{seg.name}")
            name = f"{directory.name}-{segment_number(seg):08d}"
            out += legacy_write_tables(lake, name, messages, rejects, version)
            seg.unlink()
    shutil.rmtree(scratch)
    return out
