"""The Lake API: opening, empty lakes, errors, attaching, snapshots, stats."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from hooklake import Lake as TopLevelLake
from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.build import build
from hooklake.datasets.lake import Lake
from hooklake.datasets.recipe import parse_recipe
from hooklake.db import connect, lake_errors
from hooklake.errors import ConfigError, LakeError
from tests.conftest import sample
from tests.datasets.test_lake_support import row, write_rows

VIEWS = ("messages", "conversations", "turns", "handovers", "rejected")


def _columns(lake: Lake, view: str) -> list[str]:
    return list(lake.sql(f"SELECT * FROM {view}").columns)


def test_lake_is_importable_from_the_package() -> None:
    assert TopLevelLake is Lake


def test_missing_lake_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LakeError, match=r"no lake at .*missing.*does not exist"):
        Lake(tmp_path / "missing")


def test_a_directory_that_is_not_a_lake_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(LakeError, match="not a Hooklake lake"):
        Lake(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(LakeError, match="is a file"):
        Lake(tmp_path / "file")


@pytest.mark.parametrize("gap", [0, -5, timedelta(0), timedelta(milliseconds=999), True, "30", 1.5])
def test_bad_session_gaps_are_refused(tmp_path: Path, gap: object) -> None:
    with pytest.raises(ConfigError, match="session_gap"):
        Lake(tmp_path, session_gap=gap)  # type: ignore[arg-type]


def test_empty_lake_gives_empty_views_with_their_columns(tmp_path: Path) -> None:
    (tmp_path / "_journal").mkdir()  # what a collector that has not flushed yet leaves
    with Lake(tmp_path) as lake:
        for view in VIEWS:
            assert lake.sql(f"SELECT count(*) FROM {view}").fetchall() == [(0,)]
        assert _columns(lake, "messages")[:3] == ["message_key", "hook", "channel_id"]
        assert {"conversation_id", "position", "role", "date", "ts", "text"} <= set(
            _columns(lake, "messages")
        )
        assert {"conversation_id", "started_at", "ended_at", "n_messages", "has_agent"} <= set(
            _columns(lake, "conversations")
        )
        assert {"turn_index", "role", "sender_type", "text", "message_keys"} <= set(
            _columns(lake, "turns")
        )
        assert {"agent_id", "assigned_at", "unassigned_at", "time_to_first_reply"} <= set(
            _columns(lake, "handovers")
        )
        assert {"received_at", "hook", "reason", "body", "body_text", "date"} <= set(
            _columns(lake, "rejected")
        )
        stats = lake.stats()
    assert (stats.messages, stats.conversations, stats.rejects, stats.partitions) == (0, 0, 0, ())


def test_views_have_the_same_columns_empty_or_not(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    full = tmp_path / "full"
    ingest_bodies(full, [sample("text_from_bot.json"), sample("event_assign.json"), b"{bad"])
    with Lake(empty) as a, Lake(full) as b:
        for view in VIEWS:
            assert a.sql(f"SELECT * FROM {view}").types == b.sql(f"SELECT * FROM {view}").types
        assert b.sql("SELECT count(*) FROM rejected").fetchall() == [(1,)]


def test_bad_sql_is_a_lake_error_naming_the_views(tmp_path: Path) -> None:
    with Lake(tmp_path) as lake:
        with pytest.raises(
            LakeError, match=r"query failed: Catalog Error.*Hooklake views: messages"
        ):
            lake.sql("SELECT * FROM mesages")
        with pytest.raises(LakeError, match="query failed: Parser Error"):
            lake.sql("SELEC 1")
        with pytest.raises(LakeError, match=r"query failed: .*Conversion Error"):
            lake.query("SELECT 'x'::INTEGER")


def test_parameters_are_bound(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("a", customer=1), row("b", customer=2), row("c", customer=2, t=1)])
    with Lake(tmp_path) as lake:
        assert lake.sql("SELECT count(*) FROM messages WHERE customer_id = ?", [2]).fetchall() == [
            (2,)
        ]
        named = lake.query("SELECT text FROM messages WHERE customer_id = $c ORDER BY ts", {"c": 2})
    assert named.columns == ["text"] and named.rows == [("b",), ("c",)]


def test_relations_give_dataframes_and_arrow(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("a"), row("b", t=1, sender="bot")])
    with Lake(tmp_path) as lake:
        df = lake.sql("SELECT * FROM messages ORDER BY position").df()
        table = lake.sql("SELECT * FROM turns").to_arrow_table()
    assert list(df["role"]) == ["user", "assistant"]
    assert table.num_rows == 2


def test_attach_adds_the_views_to_your_own_connection_whatever_its_time_zone(
    tmp_path: Path,
) -> None:
    # 23:59:59 and 00:00:30 UTC: a non-UTC session must not move the date or the split.
    write_rows(tmp_path, [row("a", t=3599), row("b", t=3630, sender="bot")])
    with Lake(tmp_path) as lake:
        ours = lake.sql(
            "SELECT conversation_id, position, date FROM messages ORDER BY 2"
        ).fetchall()
        con = duckdb.connect()
        con.execute("SET TimeZone = 'America/Los_Angeles'")
        assert lake.attach(con) is con
        theirs = con.sql(
            "SELECT conversation_id, position, date FROM messages ORDER BY 2"
        ).fetchall()
    assert theirs == ours
    assert [str(d) for _, _, d in ours] == ["2025-03-01", "2025-03-02"]
    con.execute("CREATE TABLE mine AS SELECT 1")  # the user's own objects stay usable
    assert con.sql("SELECT count(*) FROM conversations").fetchall() == [(1,)]


def test_attached_views_are_temporary(tmp_path: Path) -> None:
    lake_dir = tmp_path / "lake"
    write_rows(lake_dir, [row("a")])
    db = tmp_path / "analysis.duckdb"
    with Lake(lake_dir) as lake:
        con = duckdb.connect(str(db))
        lake.attach(con)
        assert con.sql("SELECT count(*) FROM messages").fetchall() == [(1,)]
        con.close()
    con = duckdb.connect(str(db))
    names = {
        r[0] for r in con.sql("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    assert not names & set(VIEWS), "a user's database file never gets our views"


def test_views_are_a_snapshot_until_refresh(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("a")], name="one")
    with Lake(tmp_path) as lake:
        cursor = lake.cursor()
        write_rows(tmp_path, [row("b", t=5)], name="two")
        assert lake.sql("SELECT count(*) FROM messages").fetchall() == [(1,)]
        assert len(lake.files()) == 1 and [v.version for v in lake.versions()] == [1]
        lake.refresh()
        assert lake.sql("SELECT count(*) FROM messages").fetchall() == [(2,)]
        assert cursor.sql("SELECT count(*) FROM messages").fetchall() == [(1,)]


def test_views_read_only_committed_files(tmp_path: Path) -> None:
    [a] = write_rows(tmp_path, [row("a")], name="a")
    # A file a crashed writer left without committing it is not part of any version.
    data = tmp_path / "messages" / a
    orphan = "part-00000-00000000-0000-0000-0000-000000000000-c000.zstd.parquet"
    (data.parent / orphan).write_bytes(data.read_bytes())
    with Lake(tmp_path) as lake:
        assert lake.sql("SELECT message_key FROM messages").fetchall() == [("a",)]
        assert [f.path for f in lake.files()] == [a]


def test_a_lake_reads_one_version_until_refresh_or_as_of(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("a")], name="one")
    write_rows(tmp_path, [row("b", t=5)], name="two")
    with Lake(tmp_path, as_of=1) as lake:
        assert lake.sql("SELECT message_key FROM messages").fetchall() == [("a",)]
        assert [v.version for v in lake.versions()] == [1]
        lake.refresh()  # as_of stays
        assert lake.sql("SELECT count(*) FROM messages").fetchall() == [(1,)]
    with pytest.raises(LakeError, match="no version 7"):
        Lake(tmp_path, as_of=7)
    with pytest.raises(ConfigError, match="ISO time"):
        Lake(tmp_path, as_of="yesterday")


def test_stats_count_what_the_lake_holds(tmp_path: Path) -> None:
    rows = [
        row("a", customer=1, t=0),
        row("b", customer=1, t=10, sender="bot"),
        row("b", customer=1, t=10, sender="bot", arrive=20),  # a retry
        row("c", customer=1, t=4000),  # a second conversation
        row("d", customer=2, channel=11, t=3700),  # next day
    ]
    write_rows(tmp_path, rows[:3], name="x")
    write_rows(tmp_path, rows[3:], name="y")
    ingest_bodies(tmp_path, [b"not json"])
    with Lake(tmp_path) as lake:
        stats = lake.stats()
    assert (stats.messages, stats.stored_rows, stats.duplicates) == (4, 5, 1)
    assert (stats.conversations, stats.customers, stats.channels, stats.rejects) == (3, 2, 2, 1)
    assert stats.first_message_at == rows[0]["ts"] and stats.last_message_at == rows[3]["ts"]
    by_part = {(p.table, p.date): (p.files, p.rows) for p in stats.partitions}
    assert by_part[("messages", "2025-03-01")] == (1, 3)
    assert by_part[("messages", "2025-03-02")] == (1, 2)
    assert sum(p.rows for p in stats.partitions if p.table == "rejected") == 1
    printed = dict(stats.rows())
    assert printed["messages"] == 4 and printed["messages/date=2025-03-01"].startswith(
        "1 file, 3 rows"
    )


def test_connections_run_in_utc_with_settings(tmp_path: Path) -> None:
    con = connect(threads=1, memory_limit="512MB")
    settings = dict(
        con.sql(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('TimeZone', 'threads')"
        ).fetchall()
    )
    assert settings == {"TimeZone": "UTC", "threads": "1"}
    with pytest.raises(LakeError, match="threads"):
        connect(threads=0)
    with pytest.raises(LakeError, match="cannot open"):
        connect(memory_limit="lots")


def _setting(con: duckdb.DuckDBPyConnection, name: str) -> str:
    ((value,),) = con.sql(f"SELECT current_setting('{name}')::VARCHAR").fetchall()
    return str(value)


def test_lakes_of_a_process_share_a_database_but_not_their_views(tmp_path: Path) -> None:
    # Two lakes and two session gaps open at once: one customer's messages 10 minutes apart
    # are one conversation under a 30-minute gap and two under a 5-minute one.
    one, two = tmp_path / "one", tmp_path / "two"
    write_rows(one, [row("a", t=0), row("b", t=600, sender="bot")])
    write_rows(two, [row("c", t=0), row("d", t=60), row("e", t=120)])
    with Lake(one) as a, Lake(one, session_gap=5) as b, Lake(two) as c:
        # Connections to one database: its settings are theirs, and so is its footer cache.
        a.connection.execute("SET GLOBAL pivot_limit = 12345")
        assert _setting(c.connection, "pivot_limit") == "12345"
        c.connection.execute("RESET GLOBAL pivot_limit")
        counts = [lk.sql("SELECT count(*) FROM conversations").fetchall() for lk in (a, b, c)]
        assert counts == [[(1,)], [(2,)], [(1,)]]
        assert c.sql("SELECT count(*) FROM messages").fetchall() == [(3,)]
        a.close()
        # Closing a Lake closes its connection only.
        assert b.sql("SELECT count(*) FROM conversations").fetchall() == [(2,)]
        assert b.cursor().sql("SELECT count(*) FROM conversations").fetchall() == [(2,)]
        with pytest.raises(duckdb.ConnectionException):
            a.connection.sql("SELECT 1")
    # Lakes opened and queried from several threads at once each see their own lake.
    with ThreadPoolExecutor(8) as pool:

        def count(k: int) -> tuple[int, int]:
            with Lake(one if k % 2 else two, session_gap=5 if k % 3 else 30) as lk:
                ((messages, conversations),) = lk.sql(
                    "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM conversations)"
                ).fetchall()
                return messages, conversations

        counted = list(pool.map(count, range(48)))
    expected = {(1, 5): (2, 2), (1, 30): (2, 1), (0, 5): (3, 1), (0, 30): (3, 1)}
    assert counted == [expected[k % 2, 5 if k % 3 else 30] for k in range(48)]
    # A Lake with its own memory limit or threads gets a database of its own.
    with Lake(two, memory_limit="256MB") as small, Lake(two, threads=1) as single, Lake(two) as d:
        assert _setting(small.connection, "memory_limit") == "244.1 MiB"
        assert _setting(single.connection, "threads") == "1"
        assert _setting(d.connection, "memory_limit") != "244.1 MiB"
        assert _setting(d.connection, "threads") != "1" or os.cpu_count() == 1


def test_a_build_leaves_other_lakes_settings_alone(tmp_path: Path) -> None:
    write_rows(tmp_path, [row("a", t=0), row("b", t=5, sender="bot")])
    with Lake(tmp_path) as other:
        assert _setting(other.connection, "preserve_insertion_order") == "true"
        build(parse_recipe({"name": "t"}), tmp_path, tmp_path / "out", progress=False)
        assert _setting(other.connection, "preserve_insertion_order") == "true"


def test_lake_errors_wraps_duckdb_errors_only() -> None:
    con = connect()
    with pytest.raises(LakeError, match=r"^counting: Binder Error"), lake_errors("counting"):
        con.sql("SELECT count(nope) FROM range(3)")
    with pytest.raises(ValueError), lake_errors("other"):
        raise ValueError("not ours")


def test_rejected_keeps_raw_bodies_and_decodes_what_is_text(tmp_path: Path) -> None:
    ingest_bodies(tmp_path, [b"not json", b"\xff\xfe{bad", b'{"messages": 3}'], hook="shop")
    with Lake(tmp_path) as lake:
        rows = lake.query(
            "SELECT hook, reason, body, body_text, date = received_at::DATE FROM rejected"
        ).rows
    assert {(r[2], r[3]) for r in rows} == {
        (b"not json", "not json"),
        (b"\xff\xfe{bad", None),
        (b'{"messages": 3}', '{"messages": 3}'),
    }
    assert all(hook == "shop" and reason and same_day for hook, reason, _, _, same_day in rows)
