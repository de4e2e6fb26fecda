"""Erasure: after ``hooklake forget`` and a vacuum, no byte of the lake holds the customer."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from hooklake.cli import main
from hooklake.collector.compact import compact
from hooklake.collector.ingest import ingest_bodies
from hooklake.collector.journal import SegmentWriter, encode_record
from hooklake.datasets.lake import Lake
from hooklake.errors import ConfigError, LakeError
from hooklake.forget import forget
from hooklake.index import update_index
from tests.conftest import LANDBOT

GONE, KEPT = 4242, 5151
CHANNEL = 2955840
PLANTED = {
    GONE: ("+34 611 222 333", "olvidame.ya@example.org"),
    KEPT: ("+34 699 888 777", "kept.customer@example.org"),
}
TEMPLATE = json.loads((LANDBOT / "text_from_customer.json").read_text())


def body(customer: int, n: int, *, timestamp: bool = True) -> bytes:
    """A Landbot body from ``customer`` whose text and customer fields hold their phone and
    e-mail; without ``timestamp`` it is rejected (and kept in rejects)."""
    phone, email = PLANTED[customer]
    doc: dict[str, Any] = copy.deepcopy(TEMPLATE)
    msg = doc["messages"][0]
    msg["_raw"]["uuid"] = f"{customer}-{n}"
    text = f"call me on {phone} or write to {email} (message {n})"
    msg["data"]["body"] = msg["_raw"]["message"] = text
    msg["sender"]["id"] = msg["customer"]["id"] = customer
    msg["customer"].update(email=email, phone=phone, name=f"Customer {customer}")
    msg["timestamp"] = msg["_raw"]["timestamp"] = 1_747_943_061.0 + n * 3600
    if not timestamp:
        del msg["timestamp"], msg["_raw"]["timestamp"]
    return orjson.dumps(doc)


def holders(root: Path, needle: str) -> list[str]:
    """Every file under ``root`` holding ``needle``: raw bytes of any file, and the decoded
    values of every Parquet file (compression hides them from a byte search)."""
    out = []
    raw = needle.encode()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if raw in data:
            out.append(str(path.relative_to(root)))
        elif path.suffix == ".parquet":
            decoded = orjson.dumps(pq.read_table(path).to_pylist(), default=str)
            if raw in decoded or raw in decoded.replace(b"\\u0020", b" "):
                out.append(f"{path.relative_to(root)} (decoded)")
    return out


def log_naming(root: Path, customer: int) -> list[str]:
    """The Delta log entries under ``root`` (commits and checkpoints, decoded) that hold the
    number ``customer`` on its own."""
    number = re.compile(rf"(?<![0-9]){customer}(?![0-9])".encode())
    out = []
    for path in sorted(root.glob("*/_delta_log/*")):
        data = path.read_bytes()
        if path.suffix == ".parquet":
            data = orjson.dumps(pq.read_table(path).to_pylist(), default=str)
        if number.search(data):
            out.append(str(path.relative_to(root)))
    return out


def test_forget_then_vacuum_leaves_no_byte_of_the_customer(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    for n in range(3):  # several commits, then compaction: the data in many files and versions
        ingest_bodies(lake, [body(GONE, n), body(KEPT, n), body(GONE, 10 + n, timestamp=False)])
    compact(lake)
    update_index(lake)  # the index holds copies of the rows, and its own log
    ingest_bodies(lake, [body(GONE, 20), body(KEPT, 20)])
    # Acknowledged but not flushed yet: in a sealed journal segment on this machine.
    writer = SegmentWriter(lake)
    writer.open()
    header = {"kind": "message", "hook": "default", "t": 1, "h": {}, "n": 1}
    writer.write(encode_record(header, body(GONE, 30)))
    writer.close()

    for value in PLANTED[GONE]:
        found = holders(lake, value)
        assert any("_journal" in f for f in found) and any("messages/" in f for f in found)
        assert any("rejected/" in f for f in found)
    with Lake(lake) as lk:
        assert lk.query(f"SELECT count(*) FROM messages WHERE customer_id = {GONE}").rows == [(4,)]

    report = forget(lake, GONE)
    assert report.segments_flushed == 1
    assert (report.messages_deleted, report.rejects_deleted) == (5, 3)
    with Lake(lake) as lk:
        assert lk.query(f"SELECT count(*) FROM messages WHERE customer_id = {GONE}").rows == [(0,)]
        assert lk.query(f"SELECT count(*) FROM messages WHERE customer_id = {KEPT}").rows == [(4,)]
        assert lk.query("SELECT count(*) FROM rejected").rows == [(0,)]
    # Deleted, but older versions' files still hold them until the vacuum.
    assert holders(lake, PLANTED[GONE][0])
    # The log holds numeric ids: file statistics, and the delete's own predicate.
    assert any("messages/_delta_log" in f for f in log_naming(lake, GONE))
    assert any("index/_delta_log" in f for f in log_naming(lake, GONE))
    compact(lake, vacuum=True, retention=timedelta(0))
    for value in PLANTED[GONE]:
        assert holders(lake, value) == [], value
    for value in PLANTED[KEPT]:
        assert holders(lake, value), "the other customer is kept"
    assert holders(lake, f"{GONE}-") == []  # not even the message keys
    assert log_naming(lake, GONE) == []  # nor their id
    assert log_naming(lake, KEPT)
    # Versions from before the erasure cannot be read any more, and say why.
    gone = r"cannot read version 1 of the messages table of lake .*: its log entries are gone"
    with pytest.raises(LakeError, match=gone):
        Lake(lake, as_of=1)
    # The index followed the vacuum: nothing for it to rebuild.
    assert update_index(lake).action == "up to date"
    with Lake(lake) as lk:
        assert lk.query(f"SELECT count(*) FROM messages WHERE customer_id = {KEPT}").rows == [(4,)]


def test_forget_by_channel_and_cli(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    ingest_bodies(lake, [body(GONE, 1), body(KEPT, 1)])
    other = orjson.loads(body(GONE, 2))
    other["messages"][0]["channel"]["id"] = 1
    ingest_bodies(lake, [orjson.dumps(other)])
    args = ["forget", "--lake", str(lake), "--customer", str(GONE), "--channel", str(CHANNEL)]
    result = CliRunner().invoke(main, [*args, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {d["stat"]: d["value"] for d in orjson.loads(result.stdout)}
    assert rows["messages deleted"] == 1 and "compact --vacuum" in rows["next step"]
    with Lake(lake) as lk:
        q = "SELECT customer_id, channel_id FROM messages ORDER BY ALL"
        assert lk.query(q).rows == [(GONE, 1), (KEPT, CHANNEL)]
    result = CliRunner().invoke(main, ["forget", "--lake", str(lake), "--customer", "x"])
    assert result.exit_code == 2
    with pytest.raises(ConfigError):
        forget(lake, True)


@pytest.mark.parametrize(
    "command",
    [
        ["forget", "--customer", "4242"],
        ["compact", "--vacuum", "--retention-hours", "0"],
        ["flush"],
        ["flush", "--journal", "{journal}"],  # a real journal beside a mistyped lake
    ],
)
def test_commands_that_change_a_lake_refuse_a_missing_one(
    tmp_path: Path, command: list[str]
) -> None:
    """An erasure (or a compaction, or a flush) run on a mistyped --lake says there is no lake
    there, in one line, and leaves no empty lake behind that would hide the mistake."""
    missing = tmp_path / "lkae"
    journal = tmp_path / "journal"
    journal.mkdir()
    command = [arg.format(journal=journal) for arg in command]
    result = CliRunner().invoke(main, [*command, "--lake", str(missing)])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no lake at {missing}: the directory does not exist (pass --lake or set "
        "HOOKLAKE_LAKE to the directory your collector writes)"
    ]
    assert not missing.exists()
