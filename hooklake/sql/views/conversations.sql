-- conversations: one row per conversation (one customer of one channel, split by the session
-- gap; see messages.sql). Counts are over deduplicated messages. has_agent: a human agent held
-- the conversation at some point (it has a row in handovers), whether or not they wrote.
CREATE OR REPLACE TEMP VIEW conversations AS
WITH channels AS (
    -- Names and types belong to the channel; report the latest ones the lake has seen: those of
    -- the last message of the channel's conversation that ended last.
    SELECT
        channel_id,
        arg_max(channel_name, (ended_at, customer_id)) AS channel_name,
        arg_max(channel_type, (ended_at, customer_id)) AS channel_type
    FROM hooklake_conversation_counts
    GROUP BY channel_id
)
SELECT
    c.conversation_id,
    c.channel_id,
    c.customer_id,
    c._started_at AS started_at,
    c.ended_at,
    c.ended_at - c._started_at AS duration,
    c.n_messages,
    c.n_customer,
    c.n_bot,
    c.n_agent,
    c.n_sys,
    c.has_agent,
    ch.channel_name,
    ch.channel_type,
    hooklake_utc_date(c._started_at) AS first_date,
    hooklake_utc_date(c.ended_at) AS last_date
FROM hooklake_conversation_counts AS c
LEFT JOIN channels AS ch ON ch.channel_id IS NOT DISTINCT FROM c.channel_id;
