"""Questions analysts ask of a lake, one function each, answered as pandas DataFrames.

The notebooks in ``notebooks/`` are built on these; they work the same in any notebook or
script::

    from hooklake.datasets import explore
    from hooklake.demo import demo_lake

    lake = demo_lake()                    # $HOOKLAKE_LAKE, or a small simulated lake
    explore.volume(lake)                  # messages per hour/day/week and channel
    explore.handover_summary(lake)        # how often conversations go to a human, per channel

The lake functions take a :class:`~hooklake.datasets.lake.Lake` and read its views (so the
lake's session gap applies); their queries are ``hooklake/sql/queries/explore_*.sql``.
Channels are labelled like ``"Acme Store (Web)"``, times are UTC, and durations are plain
numbers of seconds or minutes (the column name says which) so they plot directly.
:func:`dataset_splits` and :func:`dataset_examples` read a built dataset folder instead, for
checking what a build produced.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pandas as pd

from hooklake.datasets.card import MANIFEST
from hooklake.datasets.formats import SUFFIXES, writer_class
from hooklake.datasets.lake import Lake
from hooklake.datasets.redact import KINDS
from hooklake.datasets.render import SILENT_TYPES, render_text
from hooklake.db import lake_errors, query_sql
from hooklake.errors import BuildError, LakeError


def volume(lake: Lake, every: str | timedelta | None = None) -> pd.DataFrame:
    """Messages, new conversations and active customers per period and channel.

    ``every`` is the period, e.g. ``"1 hour"``, ``"1 day"``, ``"1 week"`` or a timedelta;
    by default hours for up to 3 days of traffic, days for up to 120 days, weeks beyond.
    Periods without traffic are listed with zeros. Columns: ``period`` (UTC start),
    ``channel``, ``messages``, ``conversations`` (started in the period), ``customers``.
    """
    if isinstance(every, timedelta) and every <= timedelta(0):
        raise LakeError(f"every must be a positive period, not {every}")
    return _frame(lake, "explore_volume", {"every": every})


def conversation_lengths(lake: Lake) -> pd.DataFrame:
    """One row per conversation: ``conversation_id``, ``channel``, ``customer_id``,
    ``started_at``, its length in ``messages``, ``turns`` and ``minutes``, messages by who
    wrote them (``customer_messages``, ``bot_messages``, ``agent_messages``) and whether it
    was ``handed_over`` to a human agent."""
    return _frame(lake, "explore_conversation_lengths")


def read_conversation(lake: Lake, conversation_id: str) -> pd.DataFrame:
    """One conversation in order, as the customer saw it: ``position``, ``ts``, ``sender``
    (customer, bot, agent or sys), ``sender_name``, ``type`` and ``text``.

    ``text`` is what the chat showed: a dialog is its question and ``- option`` lines, a
    button click the button's text, media a ``[image: URL]`` placeholder with the caption,
    and system deliveries (handovers, session openings) their description in parentheses.
    Conversation ids come from :func:`conversation_lengths` or the ``conversations`` view.
    """
    rows = _frame(lake, "explore_read_conversation", {"conversation_id": conversation_id})
    if rows.empty:
        raise LakeError(
            f"no conversation {conversation_id!r} in lake {lake.path} with a session gap of "
            f"{lake.session_gap} (list the ids with explore.conversation_lengths(lake))"
        )
    shown = [
        _shown(kind, text, url, message, action, sender)
        for kind, text, url, message, action, sender in zip(
            rows["type"],
            rows["text"],
            rows["url"],
            rows["message"],
            rows["action"],
            rows["sender_type"],
            strict=True,
        )
    ]
    out = rows[["position", "ts", "sender_type", "sender_name", "type"]].rename(
        columns={"sender_type": "sender"}
    )
    out["text"] = shown
    return out


def dialog_replies(lake: Lake) -> pd.DataFrame:
    """One row per button question a bot asked (a dialog or a WhatsApp card template):
    ``conversation_id``, ``channel``, ``step`` (1 for a conversation's first question, 2 for
    its second, ...), ``question``, ``reply`` (``button``: clicked one; ``message``: wrote
    something instead; ``none``: said nothing before the next question or the end) and the
    ``choice`` clicked."""
    return _frame(lake, "explore_dialog_replies")


def funnel(lake: Lake, steps: int = 8) -> pd.DataFrame:
    """How far conversations get through the bot's button questions.

    Row ``step`` k counts the conversations that were ``shown`` a k-th question and how they
    answered it: ``clicked`` a button, ``wrote_instead`` or gave ``no_reply``; ``question`` is
    the wording most often shown at that step. At most ``steps`` rows.
    """
    if steps < 1:
        raise LakeError(f"steps must be at least 1, not {steps}")
    return _over_dialog_replies(lake, "explore_funnel", {"steps": steps})


def dialog_choices(lake: Lake) -> pd.DataFrame:
    """For each button ``question``, each ``choice`` customers clicked, its ``clicks``, how
    often the question was ``shown`` and ``share_of_shown`` (clicks / shown). Questions shown
    most come first."""
    return _over_dialog_replies(lake, "explore_dialog_choices", {})


def handover_times(lake: Lake) -> pd.DataFrame:
    """One row per handover to a human agent: a row of the ``handovers`` view, so an assign
    event or whatever shows the hand-off first (``customer.agent_id`` set, an agent's message).

    Columns: ``conversation_id``, ``channel``, ``agent_id``, ``assigned_at``, its UTC ``hour``
    and ``weekday``, ``messages_before`` and ``minutes_in`` (how far into the conversation),
    ``wait_seconds`` until the agent's first message (NaN when no agent wrote before the
    conversation was unassigned or ended) and ``with_agent_minutes`` until it was unassigned
    (NaN while still assigned).
    """
    return _frame(lake, "explore_handover_times")


def handover_summary(lake: Lake) -> pd.DataFrame:
    """Per channel, then ``All channels``: ``conversations``, how many were ``handed_over``
    to a human and their ``share_handed_over``, the number of ``handovers`` and of those no
    agent answered (``unanswered``), and the ``median_wait_seconds`` and
    ``p90_wait_seconds`` until the agent's first message."""
    return _frame(lake, "explore_handover_summary")


def before_handover(lake: Lake, n: int = 3) -> pd.DataFrame:
    """The last ``n`` things customers said before each handover to a human agent.

    Columns: ``conversation_id``, ``channel``, ``assigned_at``, ``nth_before`` (1 = the last
    customer message before the handover), ``seconds_before`` it, ``type`` and ``text`` (as
    the chat showed it: a button click is the button's text).
    """
    if n < 1:
        raise LakeError(f"n must be at least 1, not {n}")
    rows = _frame(lake, "explore_before_handover", {"n": n})
    rows["text"] = [
        _shown(kind, text, url, message, None)
        for kind, text, url, message in zip(
            rows["type"], rows["text"], rows["url"], rows["message"], strict=True
        )
    ]
    return rows.drop(columns=["url", "message"])


def dataset_splits(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """What a built dataset (a ``hooklake build`` output folder) holds, one row per split:
    ``examples``, ``turns``, ``system``/``user``/``assistant`` messages, ``agent_replies``
    (assistant messages a human agent wrote), ``trained_replies``, ``characters`` and
    ``tokens_estimate``, as the build counted them in its manifest."""
    rows = []
    for split, stats in _manifest(Path(out_dir))["stats"]["splits"].items():
        roles = stats.get("messages", {})
        flat = {k: v for k, v in stats.items() if k != "messages"}
        rows.append({"split": split, **flat, **{r: roles.get(r, 0) for r in _ROLES}})
    return pd.DataFrame(rows)


def dataset_examples(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per example of a built dataset, read back from its files in any format:
    ``split``, ``example`` (0-based line or row), ``messages``, ``user_messages``,
    ``assistant_messages``, ``characters``, and per redaction kind (``email``, ``phone``,
    ``card``, ...) how many placeholders such as ``<EMAIL>`` its text holds."""
    out = Path(out_dir)
    manifest = _manifest(out)
    columns = ["split", "example", "messages", "user_messages", "assistant_messages"]
    columns += ["characters", *(kind.lower() for kind in KINDS)]
    rows: list[dict[str, Any]] = []
    for name in manifest["outputs"]:
        stem, _, suffix = name.partition(".")
        if suffix not in SUFFIXES:
            continue  # the card
        # Incremental builds write shards: train-00000.jsonl, train-00001.jsonl, ...
        split = stem.split("-", 1)[0]
        for index, messages in enumerate(_examples(out / name, manifest["format"])):
            roles = Counter(role for role, _ in messages)
            found = Counter(
                m.group(1) for _, content in messages for m in _PLACEHOLDER.finditer(content)
            )
            row: dict[str, Any] = {
                "split": split,
                "example": index,
                "messages": len(messages),
                "user_messages": roles["user"],
                "assistant_messages": roles["assistant"],
                "characters": sum(len(content) for _, content in messages),
            }
            row.update({kind.lower(): found[kind] for kind in KINDS})
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def dataset_pairs(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per pair of a ``preference`` dataset (a ``hooklake build`` output folder):
    ``split``, ``example``, ``step`` (the last line of the bot's last message before the
    customer's need, options and media left out: the question of the flow the customer was
    answering, or ``"(opening)"`` when the prompt holds none), ``need`` (the customer's
    message), ``rejected`` (the bot's reply), ``chosen`` (the agent's), ``reply`` (the
    rejected reply's first line with numbers and codes masked as ``#``, so the same template
    counts once), and ``prompt_turns``."""
    out = Path(out_dir)
    manifest = _manifest(out)
    if manifest["format"] != "preference":
        raise BuildError(
            f"{out} holds a {manifest['format']} dataset; dataset_pairs reads preference ones"
        )
    rows: list[dict[str, Any]] = []
    for name in manifest["outputs"]:
        split, _, suffix = name.partition(".")
        if suffix != "jsonl":
            continue
        with open(out / name, "rb") as lines:
            for index, line in enumerate(lines):
                record = orjson.loads(line)
                prompt = record["prompt"]
                asked = [m["content"] for m in prompt if m["role"] == "assistant"]
                rejected = record["rejected"][0]["content"]
                rows.append(
                    {
                        "split": split,
                        "example": index,
                        "step": _step(asked[-1]) if asked else "(opening)",
                        "need": prompt[-1]["content"],
                        "rejected": rejected,
                        "chosen": record["chosen"][0]["content"],
                        "reply": _CODES.sub("#", rejected.split("\n")[0]),
                        "prompt_turns": sum(m["role"] != "system" for m in prompt),
                    }
                )
    columns = ["split", "example", "step", "need", "rejected", "chosen", "reply", "prompt_turns"]
    return pd.DataFrame(rows, columns=columns)


def _step(said: str) -> str:
    lines = [line for line in said.split("\n") if line and not line.startswith(("- ", "["))]
    return lines[-1] if lines else said.split("\n")[0]


_ROLES = ("system", "user", "assistant")
# Words with a digit in them (order numbers, amounts, dates), masked to group templates.
_CODES = re.compile(r"[^\s,.:;!?]*\d[^\s,.:;!?]*")
_PLACEHOLDER = re.compile("<(" + "|".join(KINDS) + ")>")


def _manifest(out: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = orjson.loads((out / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise BuildError(
            f"no dataset in {out}: it has no {MANIFEST} (build one with `hooklake build RECIPE`)"
        ) from None
    except (OSError, orjson.JSONDecodeError) as exc:
        raise BuildError(f"cannot read {out / MANIFEST}: {exc}") from None
    return manifest


def _examples(path: Path, fmt: str) -> Iterator[list[tuple[str, str]]]:
    """Each example of one split file as (role, content) pairs, whatever the format."""
    return writer_class(fmt).read(path)


def _frame(lake: Lake, name: str, params: dict[str, object] | None = None) -> pd.DataFrame:
    with lake_errors(f"cannot compute {name.removeprefix('explore_')}"):
        _define_channels(lake.connection)
        frame: pd.DataFrame = lake.sql(query_sql(name), params=params or None).df()
    return frame


def _over_dialog_replies(lake: Lake, name: str, params: dict[str, object]) -> pd.DataFrame:
    # The per-question replies are a view of their own so the funnel and the choices are
    # aggregated in DuckDB from one definition; it is temporary and lives on the Lake's
    # connection like the lake's own views.
    with lake_errors(f"cannot compute {name.removeprefix('explore_')}"):
        con = lake.connection
        _define_channels(con)
        con.execute(
            "CREATE OR REPLACE TEMP VIEW hooklake_explore_dialog_replies AS "
            + query_sql("explore_dialog_replies").rstrip().rstrip(";")
        )
        frame: pd.DataFrame = lake.sql(query_sql(name), params=params or None).df()
    return frame


def _define_channels(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(query_sql("explore_channels"))


def _shown(
    kind: str | None,
    text: str | None,
    url: str | None,
    message: str | None,
    action: str | None,
    sender: str | None = None,
) -> str:
    if (kind or "").lower() in SILENT_TYPES or sender == "sys":
        # Events and sys deliveries are no part of the dialogue, but a reader needs to see
        # the handover.
        return f"({_str(text) or _str(action) or kind})"
    return render_text(kind, _str(text), _str(url), _str(message))


def _str(value: object) -> str | None:
    # pandas gives missing strings as None or NaN depending on the column.
    return value if isinstance(value, str) else None
