"""One example per conversation for a whole batch at once: the common recipe, over arrays.

Most recipes train every assistant reply of a whole conversation (``unit = "conversation"``,
``targets = "assistant"``, agent replies kept or dropped). Their examples need no look at one
conversation at a time: which messages an ``agent_turns = "drop"`` recipe leaves out, where
turns start, the trimming to a user opening and an assistant close, and the
``min_user_turns`` filter are comparisons between neighbouring rows, done here with NumPy over
the batch; the turns' texts are joined by Arrow, and the examples come out as columns
(:class:`~.flat.ExampleColumns`) that the writer reads as they are. The result is what
:func:`.examples.conversation_examples_of` gives conversation by conversation (the property
test of :mod:`.shape` against :mod:`.reference` holds it to that).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from hooklake.datasets.flat import (
    NO_WEIGHT,
    ROLES,
    WEIGHT_1,
    ExampleColumns,
    FlatExamples,
)
from hooklake.datasets.recipe import Recipe

#: Sender codes of the rows handed in (the order of :data:`.render.SENDER_ROLES`).
CUSTOMER, BOT, AGENT = 0, 1, 2

SYSTEM, USER, ASSISTANT = (ROLES.index(r) for r in ("system", "user", "assistant"))

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
    texts: pa.Array,
    keys: pa.Array,
    ids: Sequence[str],
    channels: Sequence[int | None],
    customers: Sequence[int | None],
) -> tuple[ExampleColumns, list[str | None]]:
    """The examples of ``conv_count`` conversations as columns (at most one each, in
    conversation order), and for each conversation why it gave none (or ``None``).

    The rendered, redacted messages of the batch come as parallel arrays in build order:
    ``owners`` (the conversation of each, ascending), ``senders`` (:data:`CUSTOMER`,
    :data:`BOT`, :data:`AGENT`), ``texts`` and ``keys``; ``ids``, ``channels`` and
    ``customers`` describe each conversation."""
    n = len(texts)
    why: list[str | None] = [NO_REPLY] * conv_count
    keep = pc.greater(pc.binary_length(texts), 0).to_numpy(zero_copy_only=False) if n else None
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
    rows = np.flatnonzero(keep) if keep is not None else np.zeros(0, dtype=np.int64)
    if not len(rows):
        return _no_examples(keys), why
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
    picked = texts.take(pa.array(rows[msg_rows]))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), picked.cast(pa.string()))
    turn_texts = pc.binary_join(lists, "\n")

    # Which conversations give an example: some kept turn, and enough of them the user's.
    convs = t_own[conv_start]
    gives = (count > 0) & (users >= recipe.filter.min_user_turns)
    for k, c in zip(convs.tolist(), count.tolist(), strict=True):
        if c:
            why[k] = TOO_FEW
    made = np.flatnonzero(gives)
    for k in convs[made].tolist():
        why[k] = None
    # Kept turns of each conversation are a contiguous range of ``sel``; so are their keys.
    turn_at = np.searchsorted(sel, conv_start)[made]
    c = count[made]
    prompt = recipe.examples.system_prompt
    lead = 1 if prompt else 0
    sizes = c + lead
    starts = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    j = np.arange(int(starts[-1])) - np.repeat(starts[:-1], sizes)
    is_prompt = j < lead
    turn = np.repeat(turn_at, sizes) + j - lead
    turn[is_prompt] = 0
    t_user_sel, t_human_sel = t_user[sel], t_human[sel]
    said_user = t_user_sel[turn] if len(turn) else np.zeros(0, dtype=bool)
    said_human = t_human_sel[turn] if len(turn) else np.zeros(0, dtype=bool)
    source = np.where(is_prompt, len(turn_texts), turn)
    contents = pa.concat_arrays([turn_texts, pa.array([prompt or ""], pa.string())])
    flat = FlatExamples(
        starts,
        np.where(is_prompt, SYSTEM, np.where(said_user, USER, ASSISTANT)).astype(np.int64),
        contents.take(pa.array(source, pa.int64())),
        np.where(is_prompt | said_user, NO_WEIGHT, WEIGHT_1).astype(np.int64),
        ~is_prompt & ~said_user & said_human,
    )
    # Keys: those of the kept messages from the first user turn to the last assistant turn.
    key_from = turn_start[np.minimum(first_user, big - 1)][made]
    key_to = turn_end[np.maximum(last_asst, 0)][made]
    key_starts = np.concatenate(([0], np.cumsum(key_to - key_from))).astype(np.int64)
    key_rows = np.repeat(key_from - key_starts[:-1], key_to - key_from) + np.arange(key_starts[-1])
    made_convs = convs[made].tolist()
    return (
        ExampleColumns(
            flat,
            [ids[k] for k in made_convs],
            [channels[k] for k in made_convs],
            [customers[k] for k in made_convs],
            keys.take(pa.array(rows[key_rows], pa.int64())),
            key_starts,
        ),
        why,
    )


def _no_examples(keys: pa.Array) -> ExampleColumns:
    empty = np.zeros(0, dtype=np.int64)
    flat = FlatExamples(
        np.zeros(1, dtype=np.int64), empty, pa.array([], pa.string()), empty, empty.astype(bool)
    )
    return ExampleColumns(flat, [], [], [], keys.slice(0, 0), np.zeros(1, dtype=np.int64))
