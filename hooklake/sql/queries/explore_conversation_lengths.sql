-- explore_conversation_lengths: one row per conversation with how long it was, in messages,
-- turns and minutes, and whether a human agent took part. Turns are user/assistant runs as
-- in the turns view; minutes run from the first to the last message.
WITH turn_counts AS (
    SELECT conversation_id, count(*) AS turns
    FROM turns
    GROUP BY conversation_id
),
handed_over AS (
    SELECT DISTINCT conversation_id
    FROM handovers
)
SELECT
    c.conversation_id,
    ch.channel,
    c.customer_id,
    c.started_at,
    c.n_messages AS messages,
    coalesce(t.turns, 0) AS turns,
    c.n_customer AS customer_messages,
    c.n_bot AS bot_messages,
    c.n_agent AS agent_messages,
    epoch(c.duration) / 60.0 AS minutes,
    h.conversation_id IS NOT NULL AS handed_over
FROM conversations AS c
JOIN hooklake_explore_channels AS ch ON ch.channel_id IS NOT DISTINCT FROM c.channel_id
LEFT JOIN turn_counts AS t ON t.conversation_id = c.conversation_id
LEFT JOIN handed_over AS h ON h.conversation_id = c.conversation_id
ORDER BY c.started_at, c.conversation_id;
