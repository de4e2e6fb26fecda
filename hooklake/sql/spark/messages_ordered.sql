-- Spark SQL twin of hooklake/sql/views/messages_unique.sql and messages_ordered.sql (DuckDB):
-- the rows of their hooklake_messages_ordered view, column for column and row for row. Read
-- them side by side; a change to one is a change to both (tests/spark/test_ordering.py
-- compares them).
--
-- {{rows}} is the stored message rows of one version of the messages table, duplicates
-- included (hooklake.spark.read). :session_gap_us is the session gap in microseconds.
--
-- Where Spark differs from DuckDB, and what this file does about it:
-- - DuckDB sorts NULLs last by default, Spark first: every ORDER BY says NULLS LAST.
-- - Spark's concat() is NULL when any argument is, DuckDB's skips NULL arguments: the
--   conversation_id below coalesces each part to '' as DuckDB does.
-- - row_number() is an INT in Spark, a BIGINT in DuckDB: _rn is cast.
-- - DuckDB deduplicates through a 64-bit hash of the key to sort only repeated keys; Spark
--   shuffles by key anyway, so it takes the plain window. The rows kept are the same.
WITH

-- 1. One row per message of a customer's stream (channel, customer, message_key): the
--    earliest arrival (ties: source).
unique_rows AS (
    SELECT *
    FROM {{rows}}
    QUALIFY row_number() OVER (
        PARTITION BY channel_id, customer_id, message_key
        ORDER BY received_at NULLS LAST, source NULLS LAST
    ) = 1
),

-- Roles, and what the row shows of a human agent holding the conversation (strongest first):
-- 'event' an assign event, 'agent_id' customer.agent_id set on a message that is not an
-- assign/unassign event, 'agent_message' a message a human agent wrote.
roles AS (
    SELECT
        *,
        CASE sender_type
            WHEN 'customer' THEN 'user'
            WHEN 'bot' THEN 'assistant'
            WHEN 'agent' THEN 'assistant'
        END AS role,
        CASE
            WHEN action = 'assign' THEN 'event'
            WHEN agent_id IS NOT NULL AND NOT (action <=> 'unassign') THEN 'agent_id'
            WHEN sender_type = 'agent' THEN 'agent_message'
        END AS _agent_evidence
    FROM unique_rows
),

-- 2. and 3. One pass over each customer's stream in order: _rn (1-based index in the
-- stream), _new (1 where a conversation starts: the first message, or a gap longer than the
-- session gap; a gap exactly equal to it stays in the conversation), _prev_role (role of the
-- previous user/assistant message, system events skipped).
split AS (
    SELECT
        *,
        CAST(row_number() OVER stream AS BIGINT) AS _rn,
        CASE
            WHEN lag(ts) OVER stream IS NULL THEN 1
            WHEN unix_micros(ts) - unix_micros(lag(ts) OVER stream) > :session_gap_us THEN 1
            ELSE 0
        END AS _new,
        lag(role) IGNORE NULLS OVER stream AS _prev_role
    FROM roles
    WINDOW stream AS (
        PARTITION BY channel_id, customer_id
        ORDER BY ts NULLS LAST, seq NULLS LAST, received_at NULLS LAST, source NULLS LAST
    )
),

-- A second pass, in the same order: _started_at (first ts of the row's conversation: ts
-- never decreases along _rn, so a running max), _run (numbers the runs of one role in the
-- stream, system events skipped; a turn is (conversation, _run)).
starts AS (
    SELECT
        * EXCEPT (_new, _prev_role),
        max(CASE WHEN _new = 1 THEN _rn END) OVER upto AS _start_rn,
        max(CASE WHEN _new = 1 THEN ts END) OVER upto AS _started_at,
        CAST(
            sum(CASE WHEN NOT (role <=> _prev_role) AND role IS NOT NULL THEN 1 ELSE 0 END)
                OVER upto
            AS BIGINT
        ) AS _run
    FROM split
    WINDOW upto AS (
        PARTITION BY channel_id, customer_id
        ORDER BY _rn
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
    )
)

-- A conversation's id: its channel, its customer and the millisecond it started (DuckDB:
-- the hooklake_conversation_id macro).
SELECT
    * EXCEPT (_start_rn),
    concat(
        coalesce(CAST(channel_id AS STRING), ''), '-',
        coalesce(CAST(customer_id AS STRING), ''), '-',
        CAST(unix_micros(_started_at) DIV 1000 AS STRING)
    ) AS conversation_id,
    _rn - _start_rn + 1 AS position
FROM starts
