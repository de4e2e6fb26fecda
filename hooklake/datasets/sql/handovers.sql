-- handovers: one row per assign event (type 'event', action 'assign'). unassigned_at is the
-- next unassign event in the same conversation (null while the conversation is still assigned);
-- first_agent_reply_at is the first agent message after the assign and before that unassign.
CREATE OR REPLACE TEMP VIEW handovers AS
WITH relevant AS MATERIALIZED (
    -- One pass over the ordered messages for both the events and the agent replies.
    SELECT channel_id, customer_id, _started_at, position, ts, type, action, sender_type,
        agent_id, raw
    FROM hooklake_messages_ordered
    WHERE (type = 'event' AND action IN ('assign', 'unassign')) OR sender_type = 'agent'
),
events AS (
    SELECT
        channel_id, customer_id, _started_at, position, ts, action,
        -- agent_id is the customer's agent at send time; older payloads keep it in _raw.extra.
        coalesce(
            agent_id,
            TRY_CAST(json_extract_string(raw, '$._raw.extra.agent_id') AS BIGINT)
        ) AS agent_id,
        min(CASE WHEN action = 'unassign' THEN position END) OVER (
            PARTITION BY channel_id, customer_id, _started_at
            ORDER BY position ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
        ) AS _unassign_position,
        min(CASE WHEN action = 'unassign' THEN ts END) OVER (
            PARTITION BY channel_id, customer_id, _started_at
            ORDER BY position ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
        ) AS _unassigned_at
    FROM relevant
    WHERE type = 'event' AND action IN ('assign', 'unassign')
),
agent_messages AS (
    SELECT channel_id, customer_id, _started_at, position, ts
    FROM relevant
    WHERE sender_type = 'agent'
),
replies AS (
    SELECT
        e.channel_id, e.customer_id, e._started_at, e.position, e.agent_id, e.ts,
        e._unassigned_at,
        min(m.ts) AS first_agent_reply_at
    FROM events AS e
    LEFT JOIN agent_messages AS m
        ON m.channel_id IS NOT DISTINCT FROM e.channel_id
        AND m.customer_id IS NOT DISTINCT FROM e.customer_id
        AND m._started_at = e._started_at
        AND m.position > e.position
        AND (e._unassign_position IS NULL OR m.position < e._unassign_position)
    WHERE e.action = 'assign'
    GROUP BY
        e.channel_id, e.customer_id, e._started_at, e.position, e.agent_id, e.ts,
        e._unassigned_at
)
SELECT
    concat(channel_id, '-', customer_id, '-', epoch_us(_started_at) // 1000) AS conversation_id,
    channel_id,
    customer_id,
    agent_id,
    position,
    ts AS assigned_at,
    _unassigned_at AS unassigned_at,
    first_agent_reply_at,
    first_agent_reply_at - ts AS time_to_first_reply
FROM replies;
