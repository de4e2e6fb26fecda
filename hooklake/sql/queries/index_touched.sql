-- An index update's spans (index/recompute.py): the spans of the touched customers' streams that new
-- stored rows (hooklake_index_new_rows, index_new_rows.sql) can change. index_input.sql then
-- takes those customers' rows in those spans (from the index, already deduplicated: the
-- earliest arrival of each key so far) plus the new rows, and the views' own SQL recomputes
-- exactly that much. {{touched}} is a constant condition that keeps the touched customers' rows,
-- and may keep others (index/recompute.py, _touched_condition): it reaches the index's Parquet scan, which
-- then skips what cannot hold them; the joins with the new rows pick the touched ones.
--
-- A change is a new row, or the stored copy of a key delivered again (an earlier arrival
-- replaces it). A stored conversation changes when a change falls in it or within a session gap
-- of either end (it joins it; between two, it joins them). Every other stored conversation
-- keeps its rows as they are: what the index holds of a message depends only on the
-- conversation it is in (messages_ordered.sql numbers rows and runs within a conversation
-- only). So each customer is recomputed in spans: [since, until) from the first changed
-- conversation or change to the next unchanged conversation (until null: to the end of the
-- stream). Unchanged conversations lie between spans, more than a session gap from anything
-- in them, so the spans are recomputed together and still cut where they should.

CREATE OR REPLACE TEMP TABLE hooklake_index_touched AS
WITH stored AS (
    -- The touched customers' stored conversations, from their conversation rows (one narrow
    -- row per conversation).
    SELECT
        i.channel_id,
        i.customer_id,
        i._started_at AS started_at,
        i._conversation.ended_at AS ended_at
    FROM hooklake_index_conversations AS i
    WHERE {{touched}} AND EXISTS (
        SELECT 1
        FROM hooklake_index_new_rows AS n
        WHERE n.channel_id IS NOT DISTINCT FROM i.channel_id
          AND n.customer_id = i.customer_id
    )
),
changes AS (
    SELECT channel_id, customer_id, ts FROM hooklake_index_new_rows
    UNION ALL
    SELECT i.channel_id, i.customer_id, i.ts
    FROM hooklake_index_rows AS i
    JOIN hooklake_index_new_rows AS n
        ON n.channel_id IS NOT DISTINCT FROM i.channel_id
        AND n.customer_id = i.customer_id
        AND n.message_key = i.message_key
    WHERE {{touched}}
),
items AS (
    -- Every stored conversation (changed or not) and every change, in stream order.
    SELECT
        s.channel_id,
        s.customer_id,
        s.started_at AS starts_at,
        EXISTS (
            SELECT 1
            FROM changes AS c
            WHERE c.channel_id IS NOT DISTINCT FROM s.channel_id
              AND c.customer_id = s.customer_id
              -- Microseconds, as messages_ordered.sql compares gaps (equal stays in).
              AND epoch_us(c.ts) >= epoch_us(s.started_at) - getvariable('hooklake_session_gap_us')
              AND epoch_us(c.ts) <= epoch_us(s.ended_at) + getvariable('hooklake_session_gap_us')
        ) AS changed
    FROM stored AS s
    UNION ALL
    SELECT channel_id, customer_id, ts, true FROM changes
),
numbered AS (
    -- A span is the changed items between two unchanged conversations: numbered by how many
    -- unchanged conversations come before them (a change never starts at one: it would be
    -- within the gap of it).
    SELECT
        *,
        count(*) FILTER (WHERE NOT changed) OVER (
            PARTITION BY channel_id, customer_id ORDER BY starts_at ROWS UNBOUNDED PRECEDING
        ) AS span
    FROM items
),
spans AS (
    SELECT channel_id, customer_id, span, min(starts_at) AS since
    FROM numbered
    WHERE changed
    GROUP BY channel_id, customer_id, span
)
SELECT s.channel_id, s.customer_id, s.since, u.starts_at AS until
FROM spans AS s
LEFT JOIN numbered AS u
    ON u.channel_id IS NOT DISTINCT FROM s.channel_id
    AND u.customer_id = s.customer_id
    AND NOT u.changed
    AND u.span = s.span + 1;
