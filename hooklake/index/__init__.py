"""The conversation index: the lake's messages deduplicated and in conversation order, kept up
to date one customer at a time.

Every view (``messages``, ``conversations``, ``turns``, ``handovers``) starts from the same
expensive step: deduplicate the stored rows, order each customer's stream and cut it into
conversations (``sql/views/messages_unique.sql``, ``messages_ordered.sql``). The index stores the
result, ``hooklake_messages_ordered``'s rows for one session gap, as a Delta table beside the
lake's own tables::

    lake/index/_delta_log/
    lake/index/layer=0/generation=<G>/kind=message/...        the base: every customer,
    lake/index/layer=0/generation=<G>/kind=conversation/...   sorted by customer
    lake/index/layer=1/generation=<G>/kind=.../...            increments: what new rows changed

Each message is a ``message`` row; each conversation also has a ``conversation`` row (its first
message's ids and times, with the conversation's figures), in files of their own, so the
``conversations`` view reads a few rows per conversation instead of filtering every message.

A customer's messages only ever depend on that customer's stored rows, so new rows change the
index for the customers they touch and no one else (the way incremental sessionisation
reprocesses only the sessions new events touch), and within a customer's stream only the
conversations they fall in or come within a session gap of: every row the index holds depends on
its conversation alone (``_rn`` and ``_run`` order and number rows within a conversation; their
values say nothing across conversations). An update reads the files the ``messages`` table
gained since the version the index covers, finds for each touched customer the spans of the
stream that change (from a changed conversation to the next unchanged one), takes those spans'
rows from the index, merges the new rows in, runs the same SQL the views run over just those
rows (``queries/index_touched.sql``, ``index_input.sql``), and appends the result as one
increment in one commit, each row marked with the span it was computed for (``_since``,
``_until``). A late delivery into an old conversation thus rewrites that conversation, not the
customer's stream after it; a duplicate delivery rewrites the conversation its stored copy is
in. The spans' rows of the base are located first from a few columns and then read from the
pages that hold them alone, unless the update touches so many customers that one pass over the
base costs less (see :func:`.recompute._locates`).

Generations are ``<messages version, 12 digits>-<random>``, so they sort by the state they
describe. A row counts unless a newer generation holds a span of its customer's stream that
its time falls in (``views/index_rows.sql``); increments not newer than the base are ignored.
That makes every interleaving safe: a crash leaves uncommitted files no version lists, two
updaters racing each write a complete state for their customers' spans (the one that saw more
has spans that contain the other's), and a fold (which rewrites base and increments as a new
base once the increments grow past a quarter of it), a merge (which rewrites the newest
increments as one, past 16 increment files, keeping their spans; see :func:`.state.merge_run`) or a
rebuild never hides a newer increment.

The index commit carries two Delta transaction ids: the ``messages`` version it covers and
the session gap (microseconds) it was computed with. The raw tables stay the source of truth:
``hooklake index --rebuild`` recomputes the index from them, and any change other than
appends and compactions (an erasure) makes the next update a rebuild.

The package, one module per part, each building on the ones before it:

- :mod:`.schema`: the table's schema, its files' layout, its rows as written;
- :mod:`.state`: a version of the index, and what the messages table gained since;
- :mod:`.read`: the views, the base resolved against newer generations;
- :mod:`.recompute`: the touched customers' rows, recomputed;
- :mod:`.commit`: one commit of index rows, recording what the index covers;
- :mod:`.rebuild`: the whole index from the raw tables;
- :mod:`.update`: updates, merges, folds and erasures.
"""

from hooklake.index.read import define_index_views
from hooklake.index.recompute import pending_rows
from hooklake.index.schema import (
    BASE,
    INCREMENT,
    ORDERED_COLUMNS,
    PENDING,
    index_schema,
    microseconds,
)
from hooklake.index.state import Changes, IndexFile, IndexState, changes_since, read_state
from hooklake.index.update import IndexReport, erase, fold_index, update_index

__all__ = [
    "BASE",
    "INCREMENT",
    "ORDERED_COLUMNS",
    "PENDING",
    "Changes",
    "IndexFile",
    "IndexReport",
    "IndexState",
    "changes_since",
    "define_index_views",
    "erase",
    "fold_index",
    "index_schema",
    "microseconds",
    "pending_rows",
    "read_state",
    "update_index",
]
