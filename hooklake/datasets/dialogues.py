"""One example per conversation for a whole batch at once: the common recipe, over arrays.

Most recipes train every assistant reply of a whole conversation (``unit = "conversation"``,
``targets = "assistant"``, agent replies kept or dropped). Their examples need no look at one
conversation at a time: which messages an ``agent_turns = "drop"`` recipe leaves out, where
turns start, the trimming to a user opening and an assistant close, and the
``min_user_turns`` filter are comparisons between neighbouring rows, done here with NumPy over
the batch; the turns' texts are joined by Arrow. What is left in Python is making the records
themselves. The result is what :func:`.examples.conversation_examples_of` gives conversation
by conversation (the property test of :mod:`.shape` against :mod:`.reference` holds it to
that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.datasets.recipe import Recipe
from hooklake.datasets.render import Example, Message

#: Sender codes of the rows handed in (the order of :data:`.render.SENDER_ROLES`).
CUSTOMER, BOT, AGENT = 0, 1, 2

NO_REPLY = "conversations_without_a_reply_to_the_user"
TOO_FEW = "conversations_with_too_few_user_turns"


def handles(recipe: Recipe) -> bool:
    """Whether :func:`batch_examples` shapes this recipe's examples: one per conversation with
    every assistant turn trained, bot and agent replies sharing turns."""
    ex = recipe.examples
    return ex.unit == "conversation" and not recipe.split_authors


def _starts(change: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    """Indices where a new segment starts, given ``change[i]`` (row i starts one; row 0 always)."""
    change = change.copy()
    if len(change):
        change[0] = True
    return np.flatnonzero(change)


def batch_examples(
    recipe: Recipe,
    conv_count: int,
    owners: npt.NDArray[np.int64],
    senders: npt.NDArray[np.int64],
    texts: Sequence[str],
    keys: Sequence[str],
    ids: Sequence[str],
    channels: Sequence[int | None],
    customers: Sequence[int | None],
) -> tuple[list[Example | None], list[str | None]]:
    """For each of ``conv_count`` conversations, its example (or ``None``) and why it gave
    none (or ``None``).

    The rendered, redacted messages of the batch come as parallel sequences in build order:
    ``owners`` (the conversation of each, ascending), ``senders`` (:data:`CUSTOMER`,
    :data:`BOT`, :data:`AGENT`), ``texts`` and ``keys``; ``ids``, ``channels`` and
    ``customers`` describe each conversation."""
    n = len(texts)
    examples: list[Example | None] = [None] * conv_count
    why: list[str | None] = [NO_REPLY] * conv_count
    nonempty = np.fromiter(map(len, texts), dtype=np.int64, count=n) > 0
    keep = nonempty
    if recipe.examples.agent_turns == "drop" and n:
        # Runs of one sender; an agent's runs go, and so does the customer run each answers.
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = (owners[1:] != owners[:-1]) | (senders[1:] != senders[:-1])
        run_starts = np.flatnonzero(new_run)
        run_sender = senders[run_starts]
        run_owner = owners[run_starts]
        answered = np.zeros(len(run_starts), dtype=bool)
        answered[:-1] = (run_sender[1:] == AGENT) & (run_owner[1:] == run_owner[:-1])
        run_keep = (run_sender != AGENT) & ~((run_sender == CUSTOMER) & answered)
        keep = keep & np.repeat(run_keep, np.diff(np.append(run_starts, n)))
    rows = np.flatnonzero(keep)
    if not len(rows):
        return examples, why
    own = owners[rows]
    user = senders[rows] == CUSTOMER
    human = senders[rows] == AGENT
    m = len(rows)
    # Turns: consecutive kept messages of one role in one conversation.
    turn_start = _starts(np.concatenate(([True], (own[1:] != own[:-1]) | (user[1:] != user[:-1]))))
    turn_end = np.append(turn_start[1:], m)
    t_own = own[turn_start]
    t_user = user[turn_start]
    t_human = np.logical_or.reduceat(human, turn_start)
    # Trim each conversation's turns to [first user turn, last assistant turn].
    t_idx = np.arange(len(turn_start))
    conv_start = _starts(np.concatenate(([True], t_own[1:] != t_own[:-1])))
    big = len(turn_start)
    first_user = np.minimum.reduceat(np.where(t_user, t_idx, big), conv_start)
    last_asst = np.maximum.reduceat(np.where(~t_user, t_idx, -1), conv_start)
    per_turn = np.repeat(np.arange(len(conv_start)), np.diff(np.append(conv_start, big)))
    kept = (t_idx >= first_user[per_turn]) & (t_idx <= last_asst[per_turn])
    users = np.add.reduceat((kept & t_user).astype(np.int64), conv_start)
    count = np.add.reduceat(kept.astype(np.int64), conv_start)

    # The turns' texts: their messages joined by newlines, by Arrow.
    sel = np.flatnonzero(kept)
    offsets = np.concatenate(([0], np.cumsum(turn_end[sel] - turn_start[sel])))
    msg_rows = np.flatnonzero(np.repeat(kept, turn_end - turn_start))
    picked = pa.array(texts).take(pa.array(rows[msg_rows]))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), picked)
    turn_texts: list[str] = pc.binary_join(lists, "\n").to_pylist()
    said = [
        Message("user", text) if user else Message("assistant", text, 1, human)
        for text, user, human in zip(
            turn_texts, t_user[sel].tolist(), t_human[sel].tolist(), strict=True
        )
    ]
    kept_keys = [keys[i] for i in rows.tolist()]

    prompt = recipe.examples.system_prompt
    minimum = recipe.filter.min_user_turns
    # Kept turns of each conversation are a contiguous range of ``sel``; so are their keys.
    turn_at = np.searchsorted(sel, conv_start)
    row_from = turn_start[np.minimum(first_user, big - 1)]
    row_to = turn_end[np.maximum(last_asst, 0)]
    for k, c, u, at, first, end in zip(
        t_own[conv_start].tolist(),
        count.tolist(),
        users.tolist(),
        turn_at.tolist(),
        row_from.tolist(),
        row_to.tolist(),
        strict=True,
    ):
        if c == 0:
            continue
        if u < minimum:
            why[k] = TOO_FEW
            continue
        messages = said[at : at + c]
        if prompt:
            messages.insert(0, Message("system", prompt))
        examples[k] = Example(messages, ids[k], channels[k], customers[k], kept_keys[first:end])
        why[k] = None
    return examples, why
