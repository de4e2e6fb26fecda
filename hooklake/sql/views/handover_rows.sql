-- hooklake_handovers, what the handovers view shows: one row per hand-off to a human agent, found from whatever evidence the lake holds
-- (Landbot's assign/unassign events are not always delivered, nor delivered first):
--
-- * A row's evidence (_agent_evidence, messages.sql) says a human holds the conversation:
--   an assign event, customer.agent_id set, or an agent's message.
-- * A row says nobody does: an unassign event, or customer.agent_id null on a customer, bot or
--   sys message, in a conversation whose messages carry agent_id at all (older payload shapes
--   have no agent_id, and null there says nothing).
-- * A hand-off starts at the first row saying a human holds the conversation after none did
--   (or at its start), so assigned_at is the earliest evidence; `source` names that evidence
--   (event / agent_id / agent_message). It ends at the next row saying nobody does
--   (unassigned_at; null while still assigned when the conversation ends).
-- * agent_id: the customer's agent on the hand-off's first row that names one, else the agent
--   an assign event names, else the first agent who wrote; first_agent_reply_at: the first
--   agent message of the hand-off.
CREATE OR REPLACE TEMP VIEW hooklake_handovers AS
WITH states AS (
    SELECT
        channel_id, customer_id, _started_at, position, ts, sender_type, sender_id, action,
        agent_id, raw, _agent_evidence,
        CASE
            WHEN _agent_evidence IS NOT NULL THEN 1
            WHEN action = 'unassign' THEN 0
            WHEN agent_id IS NULL AND action IS NULL AND sender_type <> 'agent'
                AND bool_or(agent_id IS NOT NULL AND action IS NULL) OVER conversation
                THEN 0
        END AS _held
    FROM hooklake_messages_ordered
    WINDOW conversation AS (PARTITION BY channel_id, customer_id, _started_at)
),
changes AS MATERIALIZED (
    -- Only rows that say something, and of those only where the state changes.
    SELECT *
    FROM (
        SELECT
            *,
            lag(_held) OVER (
                PARTITION BY channel_id, customer_id, _started_at ORDER BY position
            ) AS _was_held
        FROM states
        WHERE _held IS NOT NULL
    )
    WHERE _held IS DISTINCT FROM coalesce(_was_held, 0)
),
spans AS (
    SELECT
        channel_id, customer_id, _started_at, position, ts, _agent_evidence,
        lead(position) OVER next AS _end_position,
        lead(ts) OVER next AS unassigned_at,
        _held
    FROM changes
    WINDOW next AS (PARTITION BY channel_id, customer_id, _started_at ORDER BY position)
),
starts AS (
    SELECT * EXCLUDE (_held) FROM spans WHERE _held = 1
),
inside AS (
    -- What the rows of each hand-off say about its agent.
    SELECT
        s.channel_id, s.customer_id, s._started_at, s.position,
        arg_min(m.agent_id, m.position) FILTER (WHERE m.agent_id IS NOT NULL) AS customer_agent,
        arg_min({{event_agent_id}}, m.position) FILTER (WHERE m.action = 'assign') AS event_agent,
        arg_min(m.sender_id, m.position) FILTER (WHERE m.sender_type = 'agent') AS writer,
        min(m.ts) FILTER (WHERE m.sender_type = 'agent') AS first_agent_reply_at
    FROM starts AS s
    JOIN states AS m
        ON m.channel_id IS NOT DISTINCT FROM s.channel_id
        AND m.customer_id IS NOT DISTINCT FROM s.customer_id
        AND m._started_at = s._started_at
        AND m.position >= s.position
        AND (s._end_position IS NULL OR m.position < s._end_position)
    WHERE m._agent_evidence IS NOT NULL
    GROUP BY s.channel_id, s.customer_id, s._started_at, s.position
)
SELECT
    hooklake_conversation_id(s.channel_id, s.customer_id, s._started_at)
        AS conversation_id,
    s.channel_id,
    s.customer_id,
    coalesce(i.customer_agent, i.event_agent, i.writer) AS agent_id,
    s.position,
    s.ts AS assigned_at,
    s.unassigned_at,
    i.first_agent_reply_at,
    i.first_agent_reply_at - s.ts AS time_to_first_reply,
    s._agent_evidence AS source
FROM starts AS s
JOIN inside AS i
    ON i.channel_id IS NOT DISTINCT FROM s.channel_id
    AND i.customer_id IS NOT DISTINCT FROM s.customer_id
    AND i._started_at = s._started_at
    AND i.position = s.position;
