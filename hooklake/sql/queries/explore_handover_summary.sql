-- explore_handover_summary: per channel, and for all channels together (the last row), how
-- many conversations went to a human agent and how long customers waited for the agent's
-- first message (median and 90th percentile in seconds, over the handovers an agent answered).
WITH flagged AS (
    SELECT
        ch.channel,
        EXISTS (SELECT 1 FROM handovers AS h WHERE h.conversation_id = c.conversation_id)
            AS handed_over
    FROM conversations AS c
    JOIN hooklake_explore_channels AS ch ON ch.channel_id IS NOT DISTINCT FROM c.channel_id
),
by_conversation AS (
    SELECT
        CASE WHEN grouping(channel) = 1 THEN 'All channels' ELSE channel END AS channel,
        grouping(channel) AS is_total,
        count(*) AS conversations,
        count(*) FILTER (WHERE handed_over) AS handed_over
    FROM flagged
    GROUP BY GROUPING SETS ((channel), ())
),
by_handover AS (
    SELECT
        CASE WHEN grouping(ch.channel) = 1 THEN 'All channels' ELSE ch.channel END AS channel,
        count(*) AS handovers,
        count(*) FILTER (WHERE h.first_agent_reply_at IS NULL) AS unanswered,
        median(epoch(h.time_to_first_reply)) AS median_wait_seconds,
        quantile_cont(epoch(h.time_to_first_reply), 0.9) AS p90_wait_seconds
    FROM handovers AS h
    JOIN hooklake_explore_channels AS ch ON ch.channel_id IS NOT DISTINCT FROM h.channel_id
    GROUP BY GROUPING SETS ((ch.channel), ())
)
SELECT
    c.channel,
    c.conversations,
    c.handed_over,
    c.handed_over / nullif(c.conversations, 0) AS share_handed_over,
    coalesce(h.handovers, 0) AS handovers,
    coalesce(h.unanswered, 0) AS unanswered,
    h.median_wait_seconds,
    h.p90_wait_seconds
FROM by_conversation AS c
LEFT JOIN by_handover AS h ON h.channel = c.channel
ORDER BY c.is_total, c.channel;
