-- hooklake_messages_ordered: the deduplicated messages (hooklake_messages_unique) in
-- conversation order, with what conversations, turns and handovers need:
--
-- 1. Order each customer of each channel by ts, then seq (nulls last), then arrival, then
--    source, so the order never depends on file order.
-- 2. Start a new conversation when the gap to the customer's previous message is longer than
--    the session gap (variable hooklake_session_gap_us, in microseconds, bound by the Lake; a
--    gap exactly equal to it stays in the conversation).
--
-- The conversation index (hooklake/index) stores these rows for one session gap (_rn and _run as
-- below); a Lake reading it defines this view over the index instead of running this file.

-- One pass over each customer's stream in order:
-- _rn         1-based index in the customer's stream as read. Only its order within a
--              conversation means anything: the conversation index recomputes changed
--              conversations alone, and keeps the others' numbers (so does _run below),
-- _new        1 where a conversation starts,
-- _prev_role  role of the customer's previous user/assistant message (system events skipped).
-- Also, without a window, what the row shows of a human agent holding the conversation
-- (_agent_evidence, read by conversations.has_agent and handovers; strongest first):
--   'event'          an assign event, wherever its action sat in the payload,
--   'agent_id'       customer.agent_id set on a message that is not an assign/unassign event,
--   'agent_message'  a message a human agent wrote.
CREATE OR REPLACE TEMP VIEW hooklake_messages_split AS
WITH roles AS (
    SELECT
        *,
        CASE sender_type
            WHEN 'customer' THEN 'user'
            WHEN 'bot' THEN 'assistant'
            WHEN 'agent' THEN 'assistant'
        END AS role,
        CASE
            WHEN action = 'assign' THEN 'event'
            WHEN agent_id IS NOT NULL AND action IS DISTINCT FROM 'unassign' THEN 'agent_id'
            WHEN sender_type = 'agent' THEN 'agent_message'
        END AS _agent_evidence
    FROM hooklake_messages_unique
)
SELECT
    *,
    row_number() OVER stream AS _rn,
    CASE
        WHEN lag(ts) OVER stream IS NULL THEN 1
        -- Microseconds: comparing INTERVALs costs twice as much over millions of rows.
        WHEN epoch_us(ts) - epoch_us(lag(ts) OVER stream) > getvariable('hooklake_session_gap_us')
            THEN 1
        ELSE 0
    END AS _new,
    lag(role IGNORE NULLS) OVER stream AS _prev_role
FROM roles
WINDOW stream AS (
    PARTITION BY channel_id, customer_id
    ORDER BY ts, seq NULLS LAST, received_at, source
);

-- A second pass, in the same order:
-- _started_at  first ts of the row's conversation. ts never decreases along _rn, so the latest
--              start at or before a row is a running max.
-- _run         numbers the runs of one role in the customer's stream (system events skipped).
--              A turn is a run cut at conversation boundaries: (conversation, _run), and
--              only differences within a conversation mean anything.
CREATE OR REPLACE TEMP VIEW hooklake_messages_ordered AS
WITH starts AS (
    SELECT
        * EXCLUDE (_new, _prev_role),
        max(CASE WHEN _new = 1 THEN _rn END) OVER upto AS _start_rn,
        max(CASE WHEN _new = 1 THEN ts END) OVER upto AS _started_at,
        CAST(
            sum(CASE WHEN role IS DISTINCT FROM _prev_role AND role IS NOT NULL THEN 1 ELSE 0 END)
                OVER upto
            AS BIGINT
        ) AS _run
    FROM hooklake_messages_split
    WINDOW upto AS (PARTITION BY channel_id, customer_id ORDER BY _rn ROWS UNBOUNDED PRECEDING)
)
SELECT
    * EXCLUDE (_start_rn),
    hooklake_conversation_id(channel_id, customer_id, _started_at) AS conversation_id,
    _rn - _start_rn + 1 AS position
FROM starts;
