"""The analyst functions of ``hooklake.datasets.explore`` against a simulated lake whose truth
is known: every figure is recomputed here from the simulator's own record of what it sent."""

from __future__ import annotations

import gc
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooklake import demo
from hooklake.datasets import explore
from hooklake.datasets.build import BuildReport, build
from hooklake.datasets.lake import Lake
from hooklake.datasets.redact import KINDS
from hooklake.errors import BuildError, LakeError
from hooklake.fields import lookup
from hooklake.simulate import Truth, simulate
from tests.conftest import examples

CUSTOMERS = 60
SEED = 11
RATE = 3.0
CHANNEL_KIND = {"landbot": "Web", "whatsapp": "WhatsApp"}
QUESTIONS = {"dialog", "card_template"}
# time_bucket's default origin for periods under a month.
ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)

Key = tuple[int, int, int]  # channel, customer, conversation ordinal


@dataclass
class Said:
    """One message as the simulator sent it (first delivery only)."""

    truth: Truth
    msg: dict[str, Any]

    @property
    def ts(self) -> datetime:
        return datetime.fromtimestamp(self.truth.ts, UTC)

    @property
    def action(self) -> str | None:
        action = lookup(self.msg, "action")
        return action if isinstance(action, str) else None

    @property
    def body(self) -> str | None:
        data = self.msg.get("data", {})
        value = data.get("body") or data.get("title")
        return value if isinstance(value, str) else None


class World:
    """The simulated lake and what was sent into it. A plain class with a short repr, as
    hypothesis prints the arguments of a failing example and dataclasses in full."""

    def __init__(
        self,
        lake: Lake,
        conversations: dict[Key, list[Said]],
        ids: dict[Key, str],
        channels: dict[int, str],
    ) -> None:
        self.lake = lake
        self.conversations = conversations
        self.ids = ids
        self.channels = channels

    def __repr__(self) -> str:
        return f"World({self.lake!r})"

    def label(self, key: Key) -> str:
        return self.channels[key[0]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    lake = demo.simulated_lake(
        tmp_path_factory.mktemp("explore") / "lake",
        customers=CUSTOMERS,
        seed=SEED,
        customers_per_hour=RATE,
    )
    conversations: dict[Key, list[Said]] = defaultdict(list)
    channels: dict[int, str] = {}
    for d in simulate(CUSTOMERS, seed=SEED, customers_per_hour=RATE):
        t = d.truth
        if t.retry:
            continue
        (msg,) = orjson.loads(d.body)["messages"]
        conversations[(t.channel_id, t.customer_id, t.conversation)].append(Said(t, msg))
        channels[t.channel_id] = f"{msg['channel']['name']} ({CHANNEL_KIND[t.channel_type]})"
    for said in conversations.values():
        said.sort(key=lambda s: s.truth.position)
    # The lake's own conversation ids, matched to the simulator's by start order per customer.
    ids: dict[Key, str] = {}
    rows = lake.sql(
        "SELECT channel_id, customer_id, conversation_id, "
        "row_number() OVER (PARTITION BY channel_id, customer_id ORDER BY started_at) "
        "FROM conversations"
    ).fetchall()
    for channel_id, customer_id, conversation_id, ordinal in rows:
        ids[(channel_id, customer_id, ordinal)] = conversation_id
    assert set(ids) == set(conversations)
    yield World(lake, dict(conversations), ids, channels)
    lake.close()


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _handovers(world: World) -> list[tuple[Key, int, Said]]:
    """(conversation, index in it, its earliest evidence) for every handover, in time order:
    the assign event, or a message already carrying the agent when the event came later or
    never."""
    out = [
        (key, i, s)
        for key, said in world.conversations.items()
        for i, s in enumerate(said)
        if s.truth.handover
    ]
    return sorted(out, key=lambda h: h[2].truth.ts)


def _first_agent_reply(said: list[Said], start: int) -> Said | None:
    for s in said[start:]:
        if s.truth.agent_id is None:  # unassigned again
            return None
        if s.truth.sender_type == "agent":
            return s
    return None


# -- conversations ---------------------------------------------------------------------------


def test_conversation_lengths_match_what_was_sent(world: World) -> None:
    lengths = explore.conversation_lengths(world.lake).set_index("conversation_id")
    assert len(lengths) == len(world.conversations)
    for key, said in world.conversations.items():
        row = lengths.loc[world.ids[key]].to_dict()
        senders = [s.truth.sender_type for s in said]
        roles = ["user" if t == "customer" else "assistant" for t in senders if t != "sys"]
        runs = sum(1 for i, r in enumerate(roles) if i == 0 or roles[i - 1] != r)
        assert row["channel"] == world.label(key)
        assert row["customer_id"] == key[1]
        assert row["messages"] == len(said) == said[0].truth.size
        assert row["turns"] == runs
        assert row["customer_messages"] == senders.count("customer")
        assert row["bot_messages"] == senders.count("bot")
        assert row["agent_messages"] == senders.count("agent")
        assert row["minutes"] == pytest.approx(
            (said[-1].truth.ts - said[0].truth.ts) / 60, abs=1e-6
        )
        assert row["handed_over"] == any(s.truth.handover for s in said)
    assert lengths["started_at"].is_monotonic_increasing


def test_lengths_follow_the_lakes_session_gap(world: World) -> None:
    # Customers pause for minutes inside a conversation: a 1-minute gap splits more of them.
    with Lake(world.lake.path, session_gap=timedelta(minutes=1)) as short:
        assert len(explore.conversation_lengths(short)) > len(world.conversations)


def test_default_volume_is_hourly_and_dense(world: World) -> None:
    volume = explore.volume(world.lake)
    periods = volume["period"].drop_duplicates().sort_values()
    assert (periods.diff().dropna() == pd.Timedelta(hours=1)).all()
    # Every period lists every channel, with zeros where nothing happened.
    assert (volume.groupby("period")["channel"].nunique() == len(world.channels)).all()
    assert (volume["messages"] == 0).any()


@settings(max_examples=examples(15))
@given(minutes=st.integers(min_value=7, max_value=4 * 24 * 60))
def test_volume_counts_each_message_in_its_period(world: World, minutes: int) -> None:
    every = timedelta(minutes=minutes)

    def period(ts: datetime) -> datetime:
        return ORIGIN + (ts - ORIGIN) // every * every

    messages: Counter[tuple[datetime, str]] = Counter()
    starts: Counter[tuple[datetime, str]] = Counter()
    customers: dict[tuple[datetime, str], set[int]] = defaultdict(set)
    for key, said in world.conversations.items():
        starts[(period(said[0].ts), world.label(key))] += 1
        for s in said:
            messages[(period(s.ts), world.label(key))] += 1
            customers[(period(s.ts), world.label(key))].add(key[1])
    volume = explore.volume(world.lake, every=every)
    got = {
        (p.to_pydatetime(), c): (m, n, k)
        for p, c, m, n, k in zip(
            volume["period"],
            volume["channel"],
            volume["messages"],
            volume["conversations"],
            volume["customers"],
            strict=True,
        )
    }
    assert {k: v for k, v in got.items() if v != (0, 0, 0)} == {
        k: (messages[k], starts[k], len(customers[k])) for k in messages
    }
    # Periods run without gaps from the first message's to the last one's.
    periods = sorted({p for p, _ in got})
    assert periods[0] == min(p for p, _ in messages)
    assert periods[-1] == max(p for p, _ in messages)
    assert all(b - a == every for a, b in pairwise(periods))


def test_volume_by_named_period(world: World) -> None:
    days = explore.volume(world.lake, every="1 day")
    total = sum(len(said) for said in world.conversations.values())
    assert days["messages"].sum() == total
    assert (days["period"].dt.hour == 0).all()


@pytest.mark.parametrize("every", ["banana", "0 hours", timedelta(0), timedelta(minutes=-5)])
def test_volume_rejects_a_bad_period(world: World, every: str | timedelta) -> None:
    with pytest.raises(LakeError):
        explore.volume(world.lake, every=every)


def test_read_conversation_shows_it_in_order(world: World) -> None:
    key = next(
        k
        for k, said in world.conversations.items()
        if any(s.truth.handover for s in said)
        and any(s.truth.type == "card_template" for s in said)
    )
    said = world.conversations[key]
    shown = explore.read_conversation(world.lake, world.ids[key])
    assert list(shown["position"]) == list(range(1, len(said) + 1))
    assert list(shown["sender"]) == [s.truth.sender_type for s in said]
    assert list(shown["type"]) == [s.truth.type for s in said]
    for s, text in zip(said, shown["text"], strict=True):
        if s.truth.sender_type == "sys":  # events and session openings, in parentheses
            assert text == f"({s.body or s.action or s.truth.type})"
        elif s.truth.type in ("text", "button"):
            assert text == s.body
        elif s.truth.type in QUESTIONS:
            buttons = lookup(s.msg, "buttons")
            options = [b if isinstance(b, str) else b["title"] for b in buttons]
            assert s.body in text.splitlines()
            assert [line for line in text.splitlines() if line.startswith("- ")] == [
                f"- {o}" for o in options
            ]


def test_read_conversation_of_an_unknown_id(world: World) -> None:
    with pytest.raises(LakeError, match="no conversation 'nope'"):
        explore.read_conversation(world.lake, "nope")


# -- the button funnel ------------------------------------------------------------------------


def _expected_replies(world: World) -> dict[tuple[str, int], tuple[str | None, str, str | None]]:
    """(conversation id, step) -> (question, reply, choice), walked from the simulator's truth."""
    out: dict[tuple[str, int], tuple[str | None, str, str | None]] = {}
    for key, said in world.conversations.items():
        step = 0
        for i, s in enumerate(said):
            if s.truth.sender_type != "bot" or s.truth.type not in QUESTIONS:
                continue
            step += 1
            reply, choice = "none", None
            for later in said[i + 1 :]:
                if later.truth.sender_type == "bot" and later.truth.type in QUESTIONS:
                    break
                if later.truth.sender_type == "customer":
                    is_button = later.truth.type == "button"
                    reply = "button" if is_button else "message"
                    choice = later.body if is_button else None
                    break
            out[(world.ids[key], step)] = (s.body, reply, choice)
    return out


def test_dialog_replies_match_what_customers_did(world: World) -> None:
    replies = explore.dialog_replies(world.lake)
    got = {
        (c, step): (q, r, ch if isinstance(ch, str) else None)
        for c, step, q, r, ch in zip(
            replies["conversation_id"],
            replies["step"],
            replies["question"],
            replies["reply"],
            replies["choice"],
            strict=True,
        )
    }
    expected = _expected_replies(world)
    assert got == expected
    assert {r for _, r, _ in expected.values()} == {"button", "message", "none"}


def test_funnel_counts_conversations_per_step(world: World) -> None:
    expected: dict[int, Counter[str]] = defaultdict(Counter)
    for (_, step), (_, reply, _) in _expected_replies(world).items():
        expected[step][reply] += 1
    steps = explore.funnel(world.lake)
    assert list(steps["step"]) == sorted(expected)
    for row in records(steps):
        want = expected[row["step"]]
        assert (row["shown"], row["clicked"], row["wrote_instead"], row["no_reply"]) == (
            want.total(),
            want["button"],
            want["message"],
            want["none"],
        )
    assert list(explore.funnel(world.lake, steps=1)["step"]) == [1]
    with pytest.raises(LakeError):
        explore.funnel(world.lake, steps=0)


def test_dialog_choices_count_clicks_per_question(world: World) -> None:
    shown: Counter[str | None] = Counter()
    clicks: Counter[tuple[str | None, str | None]] = Counter()
    for question, reply, choice in _expected_replies(world).values():
        shown[question] += 1
        if reply == "button":
            clicks[(question, choice)] += 1
    choices = explore.dialog_choices(world.lake)
    got = {
        (q, c): n
        for q, c, n in zip(choices["question"], choices["choice"], choices["clicks"], strict=True)
    }
    assert got == dict(clicks)
    for row in records(choices):
        assert row["shown"] == shown[row["question"]]
        assert row["share_of_shown"] == pytest.approx(row["clicks"] / row["shown"])
    order = [shown[q] for q in choices["question"]]
    assert order == sorted(order, reverse=True)


# -- handovers --------------------------------------------------------------------------------


def test_handover_times_match_the_assign_events(world: World) -> None:
    handovers = _handovers(world)
    assert handovers, "the simulator always hands some conversations to an agent"
    times = explore.handover_times(world.lake)
    assert len(times) == len(handovers)
    for row, (key, i, event) in zip(records(times), handovers, strict=True):
        said = world.conversations[key]
        reply = _first_agent_reply(said, i)
        assert row["conversation_id"] == world.ids[key]
        assert row["channel"] == world.label(key)
        assert row["agent_id"] == event.truth.agent_id
        assert row["hour"] == event.ts.hour
        assert row["weekday"] == event.ts.strftime("%A")
        assert row["messages_before"] == i
        assert row["minutes_in"] == pytest.approx(
            (event.truth.ts - said[0].truth.ts) / 60, abs=1e-6
        )
        assert reply is not None
        assert row["wait_seconds"] == pytest.approx(reply.truth.ts - event.truth.ts, abs=1e-3)


def test_handover_summary_per_channel_and_overall(world: World) -> None:
    conversations: Counter[str] = Counter()
    handed_over: Counter[str] = Counter()
    waits: dict[str, list[float]] = defaultdict(list)
    for key, said in world.conversations.items():
        conversations[world.label(key)] += 1
        handed_over[world.label(key)] += any(s.truth.handover for s in said)
    for key, i, event in _handovers(world):
        reply = _first_agent_reply(world.conversations[key], i)
        assert reply is not None
        waits[world.label(key)].append(reply.truth.ts - event.truth.ts)
    conversations["All channels"] = conversations.total()
    handed_over["All channels"] = handed_over.total()
    waits["All channels"] = [w for label in list(waits) for w in waits[label]]

    summary = explore.handover_summary(world.lake)
    assert list(summary["channel"]) == [*sorted(world.channels.values()), "All channels"]
    for row in records(summary):
        assert row["conversations"] == conversations[row["channel"]]
        assert row["handed_over"] == handed_over[row["channel"]]
        assert row["share_handed_over"] == pytest.approx(
            handed_over[row["channel"]] / conversations[row["channel"]]
        )
        assert row["handovers"] == len(waits.get(row["channel"], []))
        assert row["unanswered"] == 0
        if waits.get(row["channel"]):
            assert row["median_wait_seconds"] == pytest.approx(
                statistics.median(waits[row["channel"]]), abs=1e-3
            )
        else:
            assert pd.isna(row["median_wait_seconds"])
    assert (summary["handed_over"] == 0).any(), "the help-centre bot never hands over"


@pytest.mark.parametrize("n", [1, 3])
def test_before_handover_lists_the_last_customer_messages(world: World, n: int) -> None:
    said_before = explore.before_handover(world.lake, n=n)
    expected = []
    for key, i, event in _handovers(world):
        customer = [s for s in world.conversations[key][:i] if s.truth.sender_type == "customer"]
        for k, s in enumerate(reversed(customer[-n:]), start=1):
            expected.append(
                (
                    world.ids[key],
                    k,
                    s.truth.type,
                    event.truth.ts - s.truth.ts,
                    s.body if s.truth.type in ("text", "button") else None,
                )
            )
    got = [
        (
            row["conversation_id"],
            row["nth_before"],
            row["type"],
            row["seconds_before"],
            row["text"] if row["type"] in ("text", "button") else None,
        )
        for row in records(said_before)
    ]
    assert [g[:3] + g[4:] for g in got] == [e[:3] + e[4:] for e in expected]
    assert [g[3] for g in got] == pytest.approx([e[3] for e in expected], abs=1e-3)
    with pytest.raises(LakeError):
        explore.before_handover(world.lake, n=0)


# -- lakes to explore -------------------------------------------------------------------------


def test_every_function_answers_an_empty_lake(tmp_path: Path) -> None:
    (tmp_path / "lake").mkdir()
    with Lake(tmp_path / "lake") as lake:
        for frame in (
            explore.volume(lake),
            explore.conversation_lengths(lake),
            explore.dialog_replies(lake),
            explore.funnel(lake),
            explore.dialog_choices(lake),
            explore.handover_times(lake),
            explore.before_handover(lake),
        ):
            assert frame.empty
            assert len(frame.columns) > 2
        summary = explore.handover_summary(lake)
        assert list(summary["channel"]) == ["All channels"]
        assert summary["conversations"].tolist() == [0]
        assert pd.isna(summary["share_handed_over"].iloc[0])


def test_demo_lake_reads_hooklake_lake_when_set(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOKLAKE_LAKE", str(world.lake.path))
    with demo.demo_lake(customers=3) as lake:
        assert lake.path == world.lake.path
        assert len(explore.conversation_lengths(lake)) == len(world.conversations)


def test_demo_lake_refuses_a_hooklake_lake_with_no_messages_yet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a collector that has received nothing leaves: the notebooks' first chart would fail
    # with matplotlib's "no numeric data to plot" instead of saying why.
    (tmp_path / "lake").mkdir()
    monkeypatch.setenv("HOOKLAKE_LAKE", str(tmp_path / "lake"))
    with pytest.raises(LakeError, match=r"holds no messages yet: send it traffic first"):
        demo.demo_lake()


def test_demo_lake_simulates_one_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOOKLAKE_LAKE", raising=False)
    lake = demo.demo_lake(customers=12, seed=SEED)
    directory = lake.path.parent
    assert directory.name.startswith("hooklake-demo-")
    assert explore.conversation_lengths(lake)["customer_id"].nunique() == 12
    lake.close()
    del lake
    gc.collect()
    assert not directory.exists(), "the temporary lake goes with its Lake"


def test_simulated_lake_is_deterministic_and_refuses_a_used_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HOOKLAKE_LAKE", raising=False)
    with (
        demo.demo_lake(tmp_path / "a", customers=10, seed=4) as a,
        demo.simulated_lake(tmp_path / "b", customers=10, seed=4) as b,
    ):
        columns = ["conversation_id", "messages", "minutes"]
        pd.testing.assert_frame_equal(
            explore.conversation_lengths(a)[columns], explore.conversation_lengths(b)[columns]
        )
    with pytest.raises(LakeError, match="not empty"):
        demo.simulated_lake(tmp_path / "a", customers=1)


# -- built datasets ---------------------------------------------------------------------------

RECIPES = Path(__file__).parent.parent.parent / "datasets"


def _build(world: World, recipe: Path, out: Path) -> BuildReport:
    return build(recipe, world.lake.path, out, progress=False)


def _placeholders(path: Path) -> Counter[str]:
    """Redaction placeholders in a split file, counted in its raw text."""
    if path.suffix == ".parquet":
        text = "\n".join(
            m["content"]
            for row in pq.read_table(path, columns=["messages"]).to_pylist()
            for m in row["messages"]
        )
    else:
        text = path.read_text(encoding="utf-8")
    return Counter({kind: text.count(f"<{kind}>") for kind in KINDS})


@pytest.mark.parametrize("recipe", ["support-bot", "agent-replies", "bot-turns-hf"])
def test_dataset_examples_agree_with_the_build(world: World, tmp_path: Path, recipe: str) -> None:
    report = _build(world, RECIPES / f"{recipe}.toml", tmp_path / recipe)
    splits = explore.dataset_splits(report.out_dir).set_index("split")
    examples = explore.dataset_examples(report.out_dir)
    # An empty split (small lakes, 5% test fractions) has no rows to group.
    nonempty = {split: n for split, n in report.counts().items() if n}
    assert examples.groupby("split").size().to_dict() == nonempty
    assert splits["examples"].to_dict() == report.counts()
    sums = examples.groupby("split")[["messages", "user_messages", "assistant_messages"]].sum()
    for row in records(sums.reset_index()):
        split = splits.loc[row["split"]]
        assert row["user_messages"] == split["user"]
        assert row["assistant_messages"] == split["assistant"]
        assert row["messages"] == split["system"] + split["user"] + split["assistant"]
    for split, output in report.files.items():
        found = _placeholders(output.path)
        in_split = examples[examples["split"] == split]
        assert {k: int(in_split[k.lower()].sum()) for k in KINDS} == dict(found)
    if recipe == "support-bot":  # scrubs personal data, which the simulator always writes
        assert examples[[k.lower() for k in KINDS]].to_numpy().sum() > 0


def test_dataset_examples_read_every_format_alike(world: World, tmp_path: Path) -> None:
    recipe = (RECIPES / "support-bot.toml").read_text(encoding="utf-8")
    frames = []
    for fmt in ("openai", "sharegpt", "hf"):
        path = tmp_path / f"{fmt}.toml"
        path.write_text(recipe.replace('format = "openai"', f'format = "{fmt}"'), encoding="utf-8")
        report = _build(world, path, tmp_path / fmt)
        assert report.format == fmt
        frames.append(explore.dataset_examples(report.out_dir))
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0])


def test_dataset_functions_need_a_built_dataset(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no dataset"):
        explore.dataset_examples(tmp_path)
    with pytest.raises(BuildError, match="no dataset"):
        explore.dataset_splits(tmp_path)
