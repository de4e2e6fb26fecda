-- conversations: one row per conversation (one customer of one channel, split by the session
-- gap; see messages.sql). Counts are over deduplicated messages.
CREATE OR REPLACE TEMP VIEW conversations AS
SELECT
    concat(channel_id, '-', customer_id, '-', epoch_us(_started_at) // 1000) AS conversation_id,
    channel_id,
    customer_id,
    _started_at AS started_at,
    max(ts) AS ended_at,
    max(ts) - _started_at AS duration,
    count(*) AS n_messages,
    count(*) FILTER (WHERE sender_type = 'customer') AS n_customer,
    count(*) FILTER (WHERE sender_type = 'bot') AS n_bot,
    count(*) FILTER (WHERE sender_type = 'agent') AS n_agent,
    count(*) FILTER (WHERE sender_type = 'sys') AS n_sys,
    count(*) FILTER (WHERE sender_type = 'agent') > 0 AS has_agent,
    -- Names can change over time; report the latest one seen in the conversation.
    arg_max(channel_name, _rn) AS channel_name,
    arg_max(channel_type, _rn) AS channel_type,
    arg_min(hook, _rn) AS hook,
    min(date) AS first_date,
    max(date) AS last_date
FROM hooklake_messages_ordered
GROUP BY channel_id, customer_id, _started_at;
