"""The views against hand-written cases (``tests/cases/lake/*.json``) stored by the collector."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from hooklake.datasets.lake import Lake
from tests.datasets.test_lake_support import CASES, ingest_case, load_case

CASE_NAMES = sorted(p.name for p in CASES.glob("*.json"))


@pytest.fixture(scope="module", params=CASE_NAMES)
def case_lake(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], Path]:
    case = load_case(request.param)
    lake = tmp_path_factory.mktemp("lake")
    ingest_case(lake, case)
    return case, lake


def _conversations(lake: Lake) -> list[list[str]]:
    rows = lake.sql(
        "SELECT conversation_id, position, text FROM messages ORDER BY conversation_id, position"
    ).fetchall()
    convs: dict[str, list[str]] = {}
    for conv, position, text in rows:
        convs.setdefault(conv, []).append(text)
        assert position == len(convs[conv]), "positions are 1, 2, 3… inside a conversation"
    return list(convs.values())


def test_messages_form_the_expected_conversations_in_order(
    case_lake: tuple[dict[str, Any], Path],
) -> None:
    case, path = case_lake
    with Lake(path) as lake:
        assert _conversations(lake) == case["expect"]["conversations"]
        assert lake.stats().stored_rows == case["expect"]["stored_rows"]


def test_session_gap_is_a_setting_of_the_lake(case_lake: tuple[dict[str, Any], Path]) -> None:
    case, path = case_lake
    for minutes, expected in case["expect"].get("with_gap_minutes", {}).items():
        with Lake(path, session_gap=timedelta(minutes=int(minutes))) as lake:
            assert _conversations(lake) == expected
        with Lake(path, session_gap=int(minutes)) as lake:
            assert _conversations(lake) == expected


def test_conversations_summarise_messages(case_lake: tuple[dict[str, Any], Path]) -> None:
    case, path = case_lake
    with Lake(path) as lake:
        rows = lake.sql(
            """
            SELECT c.conversation_id, c.n_messages, c.started_at, c.ended_at,
                   c.n_customer + c.n_bot + c.n_agent + c.n_sys = c.n_messages,
                   NOT c.has_agent OR c.n_agent > 0 OR c.conversation_id IN
                       (SELECT conversation_id FROM handovers),
                   count(m.message_key), min(m.ts), max(m.ts),
                   count(*) FILTER (WHERE m.sender_type = 'agent')
            FROM conversations AS c JOIN messages AS m USING (conversation_id)
            GROUP BY ALL
            ORDER BY c.started_at
            """
        ).fetchall()
    assert [r[1] for r in rows] == [len(c) for c in case["expect"]["conversations"]]
    for _, n, started, ended, counts_add_up, agent_flag, n_m, first, last, _ in rows:
        assert counts_add_up and agent_flag
        assert (n, started, ended) == (n_m, first, last)


def test_conversation_ids_are_channel_customer_and_first_timestamp(
    case_lake: tuple[dict[str, Any], Path],
) -> None:
    case, path = case_lake
    with Lake(path) as lake:
        rows = lake.sql(
            "SELECT conversation_id, channel_id, customer_id, epoch_us(started_at) "
            "FROM conversations"
        ).fetchall()
    for conv, channel, customer, started_us in rows:
        assert conv == f"{channel}-{customer}-{started_us // 1000}"
        assert channel == case["channel"]["id"] and customer == case["customer"]


def test_turns_merge_consecutive_messages_of_one_role(
    case_lake: tuple[dict[str, Any], Path],
) -> None:
    case, path = case_lake
    with Lake(path) as lake:
        rows = lake.sql(
            """
            SELECT t.conversation_id, t.turn_index, t.role, t.text, t.n_messages,
                   (SELECT list(text ORDER BY position) FROM messages AS m
                    WHERE list_contains(t.message_keys, m.message_key)) AS texts
            FROM turns AS t JOIN conversations AS c USING (conversation_id)
            ORDER BY c.started_at, t.turn_index
            """
        ).fetchall()
    got: dict[str, list[list[Any]]] = {}
    for conv, index, role, text, n, texts in rows:
        turns = got.setdefault(conv, [])
        assert index == len(turns) + 1
        assert n == len(texts)
        assert text == "\n".join(texts)
        turns.append([role, texts])
    assert list(got.values()) == case["expect"]["turns"]


def test_handovers(case_lake: tuple[dict[str, Any], Path]) -> None:
    """Each hand-off is named by the texts of the messages at its start, its end and its first
    agent reply, with its agent and the evidence it was found by."""
    case, path = case_lake
    expected = case["expect"].get("handovers", [])
    with Lake(path) as lake:
        rows = lake.sql(
            """
            SELECT h.agent_id, h.source,
                   (SELECT text FROM messages WHERE conversation_id = h.conversation_id
                    AND position = h.position AND ts = h.assigned_at),
                   (SELECT text FROM messages WHERE conversation_id = h.conversation_id
                    AND ts = h.unassigned_at ORDER BY position LIMIT 1),
                   (SELECT text FROM messages WHERE conversation_id = h.conversation_id
                    AND ts = h.first_agent_reply_at AND sender_type = 'agent'),
                   h.time_to_first_reply = h.first_agent_reply_at - h.assigned_at
            FROM handovers AS h ORDER BY h.assigned_at
            """
        ).fetchall()
        agent_flags = lake.sql(
            """
            SELECT c.has_agent, count(h.conversation_id) > 0
            FROM conversations AS c LEFT JOIN handovers AS h USING (conversation_id)
            GROUP BY c.conversation_id, c.has_agent
            """
        ).fetchall()
    got = [
        {"agent_id": a, "source": src, "assigned": s, "unassigned": u, "first_reply": r}
        for a, src, s, u, r, _ in rows
    ]
    assert got == expected
    assert all(ok is not False for *_, ok in rows)
    assert all(flag == found for flag, found in agent_flags), "has_agent agrees with handovers"


def test_roles_dates_and_types(case_lake: tuple[dict[str, Any], Path]) -> None:
    case, path = case_lake
    with Lake(path) as lake:
        rows = lake.sql("SELECT text, sender_type, role, type, date, ts FROM messages").fetchall()
    roles = {"customer": "user", "bot": "assistant", "agent": "assistant", "sys": None}
    types = case["expect"].get("types", {})
    for text, sender, role, type_, date, ts in rows:
        assert role == roles[sender]
        assert date == ts.date(), "date is the UTC date of ts, from the partition"
        if text in types:
            assert type_ == types[text]
    if "dates" in case["expect"]:
        assert sorted({str(r[4]) for r in rows}) == case["expect"]["dates"]


def test_duplicates_keep_their_first_arrival(case_lake: tuple[dict[str, Any], Path]) -> None:
    case, path = case_lake
    first = case["expect"].get("first_arrival", {})
    with Lake(path) as lake:
        rows = dict(lake.sql("SELECT text, epoch_us(received_at - ts) FROM messages").fetchall())
        keys = lake.sql("SELECT count(*), count(DISTINCT message_key) FROM messages").fetchall()[0]
    assert keys[0] == keys[1]
    for text, delay in first.items():
        assert rows[text] == pytest.approx(delay * 1e6, abs=2)
    assert set(rows) == {m["text"] for m in case["messages"]}, "none lost, none invented"


def test_typed_columns(case_lake: tuple[dict[str, Any], Path]) -> None:
    """Fields read from wherever the payload put them (expect.columns: text -> columns)."""
    case, path = case_lake
    for text, columns in case["expect"].get("columns", {}).items():
        with Lake(path) as lake:
            rel = lake.sql("SELECT * FROM messages WHERE text = ?", [text])
            (row,) = [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]
        assert {c: row[c] for c in columns} == columns, text
