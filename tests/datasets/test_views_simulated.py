"""The views against simulated Landbot traffic whose ground truth is known.

The simulator (:mod:`hooklake.simulate`) says, for every delivery, which conversation it belongs
to, its position, its sender and whether it is a retry. Its traffic has every case the views
must handle: out-of-order bursts, retries, equal timestamps told apart by seq, whole-second
WhatsApp timestamps, both payload shapes, handovers, unknown types, conversations across
midnight and customers coming back hours later.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hooklake.collector.ingest import ingest_bodies
from hooklake.datasets.lake import Lake
from hooklake.simulate import Delivery, Truth, simulate

ROLE = {"customer": "user", "bot": "assistant", "agent": "assistant"}


def _ingest(lake: Path, deliveries: list[Delivery], chunk: int = 60) -> None:
    """Deliveries in arrival order, a collector flush every ``chunk`` of them."""
    for i in range(0, len(deliveries), chunk):
        part = deliveries[i : i + chunk]
        arrived = int(max(d.deliver_at for d in part) * 1_000_000)
        ingest_bodies(lake, [d.body for d in part], received_at_us=arrived)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lake, list[Truth]]]:
    deliveries = list(simulate(60, seed=11))
    lake_dir = tmp_path_factory.mktemp("simulated")
    _ingest(lake_dir, deliveries)
    with Lake(lake_dir) as lake:
        yield lake, [d.truth for d in deliveries]


def _match_key(customer_id: int, ts_us: int, seq: int | None) -> tuple[int, int, int | None]:
    # Millisecond precision absorbs float rounding of timestamps; equal milliseconds only occur
    # within bursts, which seq tells apart.
    return customer_id, round(ts_us / 1000), seq


def _lake_rows(lake: Lake) -> list[dict[str, Any]]:
    rel = lake.sql(
        """
        SELECT message_key, customer_id, epoch_us(ts) AS ts_us, seq, conversation_id, position,
               role, sender_type, type
        FROM messages
        """
    )
    return [dict(zip(rel.columns, r, strict=True)) for r in rel.fetchall()]


def _truth_by_key(truths: list[Truth]) -> dict[tuple[int, int, int | None], Truth]:
    firsts = [t for t in truths if not t.retry]
    index = {_match_key(t.customer_id, round(t.ts * 1e6), t.seq): t for t in firsts}
    assert len(index) == len(firsts), "the match key identifies messages"
    return index


def test_the_traffic_has_every_case(world: tuple[Lake, list[Truth]]) -> None:
    _, truths = world
    assert any(t.retry for t in truths) and any(t.legacy for t in truths)
    assert any(t.channel_type == "whatsapp" for t in truths)
    assert any(t.seq is not None for t in truths)
    assert any(
        t.type not in {"text", "button", "dialog", "image", "iframe", "event"} for t in truths
    )
    assert any(t.sender_type == "agent" for t in truths)
    assert any(t.conversation > 1 for t in truths)


def test_each_message_appears_once_in_its_true_conversation_and_position(
    world: tuple[Lake, list[Truth]],
) -> None:
    lake, truths = world
    rows = _lake_rows(lake)
    truth = _truth_by_key(truths)
    assert len(rows) == len(truth), "retries removed, nothing lost"
    ours_to_true: dict[str, set[str]] = defaultdict(set)
    true_to_ours: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        t = truth[_match_key(r["customer_id"], r["ts_us"], r["seq"])]
        ours_to_true[r["conversation_id"]].add(t.conversation_id)
        true_to_ours[t.conversation_id].add(r["conversation_id"])
        assert r["position"] == t.position, (r, t)
        assert (r["sender_type"], r["type"]) == (t.sender_type, t.type)
        assert r["role"] == ROLE.get(t.sender_type)
        if t.message_key is not None:
            assert r["message_key"] == t.message_key
    assert all(len(v) == 1 for v in ours_to_true.values())
    assert all(len(v) == 1 for v in true_to_ours.values())


def test_conversations_have_the_true_sizes_and_senders(world: tuple[Lake, list[Truth]]) -> None:
    lake, truths = world
    expected: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for t in truths:
        if not t.retry:
            expected[(t.customer_id, t.conversation)][t.sender_type] += 1
    rows = lake.sql(
        """
        SELECT customer_id, row_number() OVER (PARTITION BY customer_id ORDER BY started_at),
               n_messages, n_customer, n_bot, n_agent, n_sys, has_agent
        FROM conversations
        """
    ).fetchall()
    assert len(rows) == len(expected)
    for customer, nth, n, n_customer, n_bot, n_agent, n_sys, has_agent in rows:
        senders = expected[(customer, nth)]
        assert n == sum(senders.values())
        assert (n_customer, n_bot, n_agent, n_sys) == (
            senders["customer"],
            senders["bot"],
            senders["agent"],
            senders["sys"],
        )
        assert has_agent == (senders["agent"] > 0)


def test_turns_follow_the_true_order(world: tuple[Lake, list[Truth]]) -> None:
    lake, truths = world
    by_conv: dict[str, list[Truth]] = defaultdict(list)
    for t in truths:
        if not t.retry:
            by_conv[f"{t.customer_id}:{t.conversation}"].append(t)
    expected: dict[str, list[tuple[str, int]]] = {}
    for key, msgs in by_conv.items():
        turns: list[tuple[str, int]] = []
        for t in sorted(msgs, key=lambda t: t.position):
            role = ROLE.get(t.sender_type)
            if role is None:
                continue
            if turns and turns[-1][0] == role:
                turns[-1] = (role, turns[-1][1] + 1)
            else:
                turns.append((role, 1))
        expected[key] = turns
    rows = lake.sql(
        """
        SELECT c.customer_id, dense_rank() OVER (PARTITION BY c.customer_id ORDER BY c.started_at),
               t.turn_index, t.role, t.n_messages
        FROM turns AS t JOIN conversations AS c USING (conversation_id)
        ORDER BY c.customer_id, c.started_at, t.turn_index
        """
    ).fetchall()
    got: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for customer, nth, index, role, n in rows:
        got[f"{customer}:{nth}"].append((role, n))
        assert index == len(got[f"{customer}:{nth}"])
    assert dict(got) == {k: v for k, v in expected.items() if v}


def test_handovers_match_the_planted_hand_offs(world: tuple[Lake, list[Truth]]) -> None:
    lake, truths = world
    planted = sorted((t.customer_id, t.agent_id) for t in truths if not t.retry and t.handover)
    rows = lake.sql(
        "SELECT customer_id, agent_id, assigned_at, unassigned_at, first_agent_reply_at "
        "FROM handovers"
    ).fetchall()
    assert sorted((c, a) for c, a, *_ in rows) == planted
    assert planted, "the simulation hands some customers to agents"
    for _, _, assigned, unassigned, reply in rows:
        assert unassigned is None or unassigned > assigned
        assert reply is None or (reply >= assigned and (unassigned is None or reply < unassigned))


def test_handovers_find_every_planted_hand_off_in_every_payload_shape(tmp_path: Path) -> None:
    """Real-shape traffic (actions flat in _raw or at the top level, customer messages ahead of
    the event, hand-offs without any event): every hand-off the simulator planted is found,
    starting at its earliest evidence, and nothing else is."""
    deliveries = list(simulate(400, seed=12))
    _ingest(tmp_path / "lake", deliveries)
    planted = {
        (t.customer_id, round(t.ts * 1_000_000)): t
        for t in (d.truth for d in deliveries)
        if t.handover and not t.retry
    }
    with Lake(tmp_path / "lake") as lake:
        rows = lake.sql(
            "SELECT customer_id, epoch_us(assigned_at), source, agent_id, first_agent_reply_at, "
            "conversation_id FROM handovers"
        ).fetchall()
        ((agreeing,),) = lake.sql(
            "SELECT bool_and(has_agent = (conversation_id IN (SELECT conversation_id "
            "FROM handovers))) FROM conversations"
        ).fetchall()
    # The lake rounds the float timestamp to microseconds in SQL; allow the last digit.
    near = {(c, us + d): (c, us) for c, us in planted for d in (-1, 0, 1)}
    found = {near.get((c, us), (c, us)): (src, agent) for c, us, src, agent, *_ in rows}
    print(
        f"hand-offs planted: {len(planted)}, found: {len(found)}, matching: "
        f"{len(planted.keys() & found.keys())}"
    )
    assert len(rows) == len(found)
    assert found.keys() == planted.keys()
    for key, (source, agent) in found.items():
        t = planted[key]
        # An agent's first message carries customer.agent_id too: the stronger evidence.
        assert source == ("event" if t.sender_type == "sys" else "agent_id"), t
        assert agent == t.agent_id, t
    assert {source for source, _ in found.values()} == {"event", "agent_id"}
    shapes = {t.shape for t in planted.values()}
    assert {"core", "samples", "flat"} <= shapes, shapes
    assert agreeing, "conversations.has_agent agrees with handovers"
