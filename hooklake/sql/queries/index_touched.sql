-- An index update's input (index.py): for each customer that new stored rows
-- (hooklake_index_new_rows, index_new_rows.sql) touch, the point from which their stream can
-- change, and hooklake_message_rows redefined as those customers' rows from that point (from
-- the index, already deduplicated: the earliest arrival of each key so far) plus the new rows.
-- The views' own SQL then recomputes exactly that much. {{touched}} is a constant condition
-- that keeps the touched customers' rows (index._touched_condition): it reaches the index's
-- Parquet scan, which then reads and decodes as little as it can.

-- What the index holds of the touched customers: their stored rows with the ordering columns
-- finding the point needs, read in one pass (the wide columns are decoded where these
-- customers' rows are anyway, for the rows from the point on).
CREATE OR REPLACE TEMP TABLE hooklake_index_seen AS
SELECT i.* EXCLUDE (
    _agent_evidence, conversation_id, position, _conversation, _turn, _handover, _shown
)
FROM hooklake_index_rows AS i
WHERE {{touched}} AND EXISTS (
    SELECT 1
    FROM hooklake_index_new_rows AS n
    WHERE n.channel_id IS NOT DISTINCT FROM i.channel_id
      AND n.customer_id = i.customer_id
);

-- The point: where the customer's earliest change falls. A change is a new row, or the stored
-- copy of a key delivered again (an earlier arrival replaces it). When the change joins or
-- falls inside a stored conversation, the point is that conversation's start. When it comes
-- more than a session gap after the conversation before it, the point is the change itself
-- (a returning customer: nothing stored is rewritten). Conversations before the point end
-- more than a session gap before it, so nothing at or after it changes them, and `since` is
-- null when the whole stream changes.
--
-- The customer's recomputed stream starts with an anchor: the last stored row before the
-- point that has a role, so the first turn after the point knows the role before it. The
-- anchor is recomputed as row 1 and not written. rn_offset and run_offset carry the
-- recomputed _rn and _run on from the rows before the point.
CREATE OR REPLACE TEMP TABLE hooklake_index_touched AS
WITH earliest AS (
    SELECT channel_id, customer_id, min(ts) AS ts
    FROM (
        SELECT channel_id, customer_id, ts FROM hooklake_index_new_rows
        UNION ALL
        SELECT s.channel_id, s.customer_id, s.ts
        FROM hooklake_index_seen AS s
        JOIN hooklake_index_new_rows AS n
            ON n.channel_id IS NOT DISTINCT FROM s.channel_id
            AND n.customer_id = s.customer_id
            AND n.message_key = s.message_key
    )
    GROUP BY channel_id, customer_id
),
stored AS (
    SELECT channel_id, customer_id, _started_at, max(ts) AS ended_at
    FROM hooklake_index_seen
    GROUP BY channel_id, customer_id, _started_at
),
containing AS (
    -- The stored conversation the earliest change joins, falls in, or follows.
    SELECT
        e.channel_id,
        e.customer_id,
        e.ts,
        max(c._started_at) AS started_at,
        arg_max(c.ended_at, c._started_at) AS ended_at
    FROM earliest AS e
    LEFT JOIN stored AS c
        ON c.channel_id IS NOT DISTINCT FROM e.channel_id
        AND c.customer_id = e.customer_id
        AND c._started_at <= e.ts
    GROUP BY e.channel_id, e.customer_id, e.ts
),
points AS (
    SELECT
        channel_id,
        customer_id,
        CASE
            WHEN epoch_us(ts) - epoch_us(ended_at) > getvariable('hooklake_session_gap_us')
                THEN ts
            ELSE started_at
        END AS since
    FROM containing
),
before AS (
    SELECT
        p.channel_id,
        p.customer_id,
        p.since,
        count(s._rn) AS n_before,
        coalesce(max(s._run), 0) AS run_before,
        max(s._rn) FILTER (WHERE s.role IS NOT NULL) AS anchor_rn
    FROM points AS p
    LEFT JOIN hooklake_index_seen AS s
        ON s.channel_id IS NOT DISTINCT FROM p.channel_id
        AND s.customer_id = p.customer_id
        AND s.ts < p.since
    GROUP BY p.channel_id, p.customer_id, p.since
)
SELECT
    channel_id,
    customer_id,
    since,
    anchor_rn,
    n_before - CASE WHEN anchor_rn IS NULL THEN 0 ELSE 1 END AS rn_offset,
    run_before - CASE WHEN anchor_rn IS NULL THEN 0 ELSE 1 END AS run_offset
FROM before;

-- Materialised: the views below read these rows many times, and they are few.
CREATE OR REPLACE TEMP TABLE hooklake_index_input AS
SELECT s.* EXCLUDE (role, _rn, _started_at, _run)
FROM hooklake_index_seen AS s
JOIN hooklake_index_touched AS t
    ON t.channel_id IS NOT DISTINCT FROM s.channel_id
    AND t.customer_id = s.customer_id
WHERE t.since IS NULL OR s.ts >= t.since OR s._rn = t.anchor_rn
UNION ALL BY NAME
SELECT * FROM hooklake_index_new_rows;

CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT * FROM hooklake_index_input;
