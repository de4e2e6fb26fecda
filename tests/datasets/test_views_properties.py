"""Property tests: for any messages, any arrival order, any split into files and any retries,
the views equal a plain-Python reference (``reference_views``)."""

from __future__ import annotations

import itertools
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake.datasets.lake import Lake
from tests.conftest import examples
from tests.datasets.test_lake_support import reference_views, row, write_rows

SENDERS = st.sampled_from(["customer", "customer", "bot", "bot", "agent", "sys"])
# Times in whole seconds around the 30-minute threshold (and equal times), seq sometimes set.
STEPS = st.sampled_from([0, 0, 1, 5, 60, 1799, 1800, 1801, 7200])


@st.composite
def traffic(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[int]]:
    rows: list[dict[str, Any]] = []
    for customer in range(1, draw(st.integers(1, 3)) + 1):
        t = draw(st.integers(0, 7200))  # starts near midnight: some cross into the next day
        for i in range(draw(st.integers(1, 12))):
            t += draw(STEPS)
            key = f"c{customer}-m{i}"
            sender = draw(SENDERS)
            seq = draw(st.one_of(st.none(), st.integers(0, 3)))
            arrive = t + draw(st.floats(0.01, 3.0))
            rows.append(row(key, customer=customer, t=t, sender=sender, seq=seq, arrive=arrive))
            for retry in range(draw(st.integers(0, 2))):
                late = arrive + draw(st.floats(0.0, 30.0))
                rows.append(
                    {
                        **rows[-1],
                        "received_at": rows[-1]["received_at"] + timedelta(seconds=late - arrive),
                        "source": f"retry/{key}/{retry}",
                    }
                )
    order = draw(st.permutations(range(len(rows))))
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(rows) - 1)), max_size=3))))
    return [rows[i] for i in order], cuts


@settings(max_examples=examples(40))
@given(traffic(), st.sampled_from([30, 1, 120]))
def test_views_equal_the_reference(
    data: tuple[list[dict[str, Any]], list[int]], gap_minutes: int
) -> None:
    rows, cuts = data
    gap = timedelta(minutes=gap_minutes)
    ref = reference_views(rows, gap)
    with tempfile.TemporaryDirectory() as tmp:
        lake_dir = Path(tmp)
        bounds = [0, *cuts, len(rows)]
        for n, (a, b) in enumerate(itertools.pairwise(bounds)):
            if a < b:
                write_rows(lake_dir, rows[a:b], name=f"file{n}")
        with Lake(lake_dir, session_gap=gap) as lake:
            messages = lake.sql(
                "SELECT message_key, conversation_id, position, received_at, source FROM messages"
            ).fetchall()
            turns = lake.sql(
                "SELECT conversation_id, turn_index, role, message_keys FROM turns"
            ).fetchall()
            n_conversations = lake.sql("SELECT count(*) FROM conversations").fetchall()[0][0]
            pairs = lake.sql(
                "SELECT conversation_id, turn_index, prompt, response, has_agent FROM turn_pairs"
            ).fetchall()

    firsts: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["received_at"], r["source"])):
        firsts.setdefault(r["message_key"], r)
    assert len(messages) == len(firsts)
    conv_of: dict[str, tuple[int, int, int]] = {}
    for key, conv_id, position, received_at, source in messages:
        ref_conv, ref_position = ref.placement[key]
        assert position == ref_position
        assert (received_at, source) == (firsts[key]["received_at"], firsts[key]["source"])
        assert conv_of.setdefault(conv_id, ref_conv) == ref_conv, "one conversation, one id"
    assert n_conversations == len(ref.conversations) == len(conv_of)

    got: dict[tuple[int, int, int], list[tuple[str, list[str]]]] = {}
    for conv_id, index, role, keys in sorted(turns, key=lambda t: (t[0], t[1])):
        got.setdefault(conv_of[conv_id], []).append((role, keys))
        assert index == len(got[conv_of[conv_id]])
    assert got == {k: v for k, v in ref.turns.items() if v}

    # turn_pairs: each customer turn with the next turn of its conversation, which answers it.
    want_pairs = set()
    for conv, conv_turns in ref.turns.items():
        for i, ((role, keys), (_, answer)) in enumerate(itertools.pairwise(conv_turns), 1):
            if role == "user":
                agent = any(firsts[k]["sender_type"] == "agent" for k in answer)
                want_pairs.add((conv, i, "\n".join(keys), "\n".join(answer), agent))
    got_pairs = {(conv_of[c], i, p, r, a) for c, i, p, r, a in pairs}
    assert len(got_pairs) == len(pairs)
    assert got_pairs == want_pairs
