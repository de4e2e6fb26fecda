"""``hooklake sql``, ``stats`` and ``compact`` as a user runs them, checked through the library."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.cli import main
from hooklake.cli.common import emit
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.db import VIEWS
from hooklake.errors import LakeError
from tests.conftest import examples, sample
from tests.datasets.test_lake_support import row, write_rows


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    rows = [
        row("a", t=0),
        row("b", t=1, sender="bot", text="line one\nline two"),
        row("c", t=4000, customer=2),
    ]
    write_rows(tmp_path, rows[:2], name="one")
    write_rows(tmp_path, rows[2:], name="two")
    ingest_bodies(tmp_path, [b"not json"])
    return tmp_path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_sql_prints_a_table(lake: Path) -> None:
    code, out, _ = run(
        "sql", "--lake", str(lake), "SELECT message_key, position FROM messages ORDER BY 1"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["message_key", "position"]
    assert [line.split() for line in lines[2:]] == [["a", "1"], ["b", "2"], ["c", "1"]]


def test_sql_table_shows_control_characters_instead_of_sending_them_to_the_terminal(
    tmp_path: Path,
) -> None:
    """A customer's text is printed to the analyst's terminal: a Windows line end, a tab, an
    escape sequence or a bidi override in it must not move the cursor, rewrite the screen or
    reverse the columns; emoji sequences and right-to-left text show as they are."""
    text = (
        "line one\r\nline two\tend \x1b[2J\x1b]0;owned\x07 \u202eevil mrhba مرحبا 👋🏽 👩\u200d💻"
    )
    body = json.loads(sample("text_from_customer.json"))
    body["messages"][0]["data"]["body"] = text
    ingest_bodies(tmp_path, [json.dumps(body).encode()])
    code, out, _ = run("sql", "--lake", str(tmp_path), "SELECT sender_type, text FROM messages")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3, "a header, a rule and the message's one line"
    assert lines[2].split(maxsplit=1) == [
        "customer",
        "line one line two end \\x1b[2J\\x1b]0;owned\\x07 \\u202eevil mrhba مرحبا 👋🏽 👩\u200d💻",
    ]
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in out.replace("\n", ""))
    # CSV and JSON keep the text exactly: they are read by programs, not by eyes.
    code, out, _ = run(
        "sql", "--lake", str(tmp_path), "--format", "json", "SELECT text FROM messages"
    )
    assert json.loads(out) == [{"text": text}]


@settings(max_examples=examples(200))
@given(st.lists(st.lists(st.text(), min_size=2, max_size=2), max_size=5))
def test_a_table_row_is_one_line_of_printable_characters(rows: list[list[str]]) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        emit(["a", "b"], rows, "table")
    lines = out.getvalue().split("\n")
    assert lines.pop() == "" and len(lines) == 2 + len(rows)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in "".join(lines))


def test_sql_json_is_a_list_of_objects(lake: Path) -> None:
    code, out, _ = run(
        "sql",
        "--lake",
        str(lake),
        "--format",
        "json",
        "SELECT conversation_id, n_messages, started_at FROM conversations ORDER BY started_at",
    )
    assert code == 0
    data = json.loads(out)
    with Lake(lake) as lk:
        expected = lk.query(
            "SELECT conversation_id, n_messages FROM conversations ORDER BY started_at"
        )
    assert [(d["conversation_id"], d["n_messages"]) for d in data] == expected.rows
    assert data[0]["started_at"].startswith("2025-03-01T23:00:00")


def test_sql_json_keeps_every_column_of_a_join(lake: Path) -> None:
    # Both views have conversation_id; a left join's null one must not hide the other.
    query = (
        "SELECT c.conversation_id, h.conversation_id, 1 AS conversation_id_1 "
        "FROM conversations AS c LEFT JOIN handovers AS h "
        "ON h.conversation_id = c.conversation_id ORDER BY c.started_at"
    )
    code, out, _ = run("sql", "--lake", str(lake), "--format", "json", query)
    assert code == 0
    with Lake(lake) as lk:
        ids = [r[0] for r in lk.query(query).rows]
    assert json.loads(out) == [
        {"conversation_id": i, "conversation_id_1_1": None, "conversation_id_1": 1} for i in ids
    ]


def test_sql_csv_keeps_newlines_inside_quotes(lake: Path) -> None:
    code, out, _ = run(
        "sql", "--lake", str(lake), "--format", "csv", "SELECT text FROM turns ORDER BY text"
    )
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [["text"], ["a"], ["c"], ["line one\nline two"]]


def test_sql_gap_minutes_changes_the_split(lake: Path) -> None:
    query = "SELECT count(*) AS n FROM conversations"
    assert json.loads(run("sql", "--lake", str(lake), "--format", "json", query)[1]) == [{"n": 2}]
    code, out, _ = run("sql", "--lake", str(lake), "--format", "json", "--gap-minutes", "1", query)
    assert (code, json.loads(out)) == (0, [{"n": 2}])
    write_rows(lake, [row("d", t=120)], name="three")  # two minutes after "b"
    out = run("sql", "--lake", str(lake), "--format", "json", "--gap-minutes", "1", query)[1]
    assert json.loads(out) == [{"n": 3}]
    out = run("sql", "--lake", str(lake), "--format", "json", "--gap-minutes", "5", query)[1]
    assert json.loads(out) == [{"n": 2}]


def test_errors_are_one_line_without_traceback(lake: Path, tmp_path: Path) -> None:
    code, _, err = run("sql", "--lake", str(lake), "SELECT * FROM nowhere")
    assert code == 1
    assert err.startswith("Error: query failed: Catalog Error") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run("stats", "--lake", str(tmp_path / "missing"))
    assert code == 1 and "no lake at" in err


@pytest.mark.parametrize("query", ["", "  ", "/* the query I meant to paste */"])
def test_sql_without_a_statement_is_one_line(lake: Path, query: str) -> None:
    # An unset shell variable (`hooklake sql "$Q"`) or a comment alone: DuckDB runs nothing.
    code, out, err = run("sql", "--lake", str(lake), query)
    assert (code, out) == (1, "")
    assert err.startswith("Error: the query holds no SQL statement") and "Attribute" not in err
    with Lake(lake) as lk, pytest.raises(LakeError, match="holds no SQL statement"):
        lk.sql(query)


def test_stats(lake: Path) -> None:
    code, out, _ = run("stats", "--lake", str(lake), "--format", "json")
    assert code == 0
    stats = {d["stat"]: d["value"] for d in json.loads(out)}
    assert stats["messages"] == 3 and stats["conversations"] == 2 and stats["rejects"] == 1
    assert stats["channels"] == 1 and stats["customers"] == 2
    assert stats["messages/date=2025-03-01"].startswith("1 file, 2 rows")
    assert any(k.startswith("rejected/date=") for k in stats)
    # Two flush commits to messages after the table's creation, one to rejected.
    assert stats["messages version"].startswith("2 (committed ")
    assert stats["messages history"] == "3 commits: 1 CREATE TABLE, 2 WRITE"
    assert stats["rejected version"].startswith("1 (committed ")


def _data_files(lake: Path) -> int:
    """Data files of the messages table on disk (the Delta log's checkpoints are not data)."""
    return sum(1 for p in (lake / "messages").rglob("*.parquet") if "_delta_log" not in p.parts)


def test_compact(lake: Path) -> None:
    ingest_bodies(lake, [sample("text_from_bot.json")])
    ingest_bodies(lake, [sample("text_from_customer.json")])
    with Lake(lake) as lk:
        before = lk.query("SELECT * FROM messages ORDER BY ALL").rows
    files_on_disk = _data_files(lake)
    code, out, _ = run("compact", "--lake", str(lake), "--format", "json")
    assert code == 0
    report = {d["stat"]: d["value"] for d in json.loads(out)}
    assert report["files merged"] == 2 and report["files written"] == 1
    with Lake(lake) as lk:
        assert lk.query("SELECT * FROM messages ORDER BY ALL").rows == before
        assert len(lk.files()) == 3  # the two files of date=2025-05-22 merged
    # Without --vacuum the replaced files stay for readers of older versions.
    assert _data_files(lake) == files_on_disk + 1
    args = ("--vacuum", "--retention-hours", "0", "--format", "json")
    code, out, _ = run("compact", "--lake", str(lake), *args)
    assert code == 0
    report = {d["stat"]: d["value"] for d in json.loads(out)}
    assert report["files merged"] == 0 and report["old files deleted"] == 2
    assert _data_files(lake) == 3
    with Lake(lake) as lk:
        assert lk.query("SELECT * FROM messages ORDER BY ALL").rows == before


@pytest.mark.parametrize("command", ["sql", "stats", "compact"])
def test_help_has_an_example(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0 and "Example" in out and "hooklake " + command in out


def test_sql_help_names_every_view() -> None:
    code, out, _ = run("sql", "--help")
    assert code == 0
    assert "Views: " + ", ".join(VIEWS) in " ".join(out.split())


def test_sql_piped_into_a_reader_that_stops_early_exits_quietly(lake: Path) -> None:
    """``hooklake sql ... | head -1``: once the reader has closed the pipe, the command stops
    without a message (it used to print "Error: BrokenPipeError") and with the exit status of
    a process SIGPIPE ended, as Unix tools do."""
    query = "SELECT range AS n, repeat('x', 40) AS pad FROM range(400000)"  # ~20 MB of table
    with subprocess.Popen(
        [sys.executable, "-m", "hooklake", "sql", "--lake", str(lake), query],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().decode().split() == ["n", "pad"]
        # Far more than a pipe buffers is still to come: the next write finds no reader.
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141
    assert stderr == ""
