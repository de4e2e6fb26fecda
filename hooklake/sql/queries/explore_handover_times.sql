-- explore_handover_times: one row per handover to a human agent (a row of handovers: an assign
-- event, or the earlier evidence handover_rows.sql names), with when
-- it happened (UTC hour and weekday, minutes and messages into the conversation), how long
-- the customer waited for the agent's first message (NULL: no agent wrote before the
-- conversation was unassigned or ended) and how long the agent kept the conversation.
SELECT
    h.conversation_id,
    ch.channel,
    h.agent_id,
    h.assigned_at,
    CAST(hour(timezone('UTC', h.assigned_at)) AS BIGINT) AS hour,
    dayname(timezone('UTC', h.assigned_at)) AS weekday,
    h.position - 1 AS messages_before,
    epoch(h.assigned_at - c.started_at) / 60.0 AS minutes_in,
    epoch(h.time_to_first_reply) AS wait_seconds,
    epoch(h.unassigned_at - h.assigned_at) / 60.0 AS with_agent_minutes
FROM handovers AS h
JOIN conversations AS c ON c.conversation_id = h.conversation_id
JOIN hooklake_explore_channels AS ch ON ch.channel_id IS NOT DISTINCT FROM h.channel_id
ORDER BY h.assigned_at, h.conversation_id, h.position;
