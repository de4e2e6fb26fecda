-- hooklake_conversation_counts: per conversation, what the conversations view reports, and the
-- channel's name and type on the conversation's last message (conversations.sql reports the
-- channel's latest). The conversation index stores these figures on each conversation's first
-- message (index_summaries.sql reads them back).
CREATE OR REPLACE TEMP VIEW hooklake_conversation_counts AS
-- Only narrow columns go through the ordering windows: this is the expensive part.
SELECT
    conversation_id,
    channel_id,
    customer_id,
    _started_at,
    max(ts) AS ended_at,
    count(*) AS n_messages,
    count(*) FILTER (WHERE sender_type = 'customer') AS n_customer,
    count(*) FILTER (WHERE sender_type = 'bot') AS n_bot,
    count(*) FILTER (WHERE sender_type = 'agent') AS n_agent,
    count(*) FILTER (WHERE sender_type = 'sys') AS n_sys,
    -- Any evidence of a human agent is a hand-off in the handovers view, so the two agree.
    bool_or(_agent_evidence IS NOT NULL) AS has_agent,
    arg_max(channel_name, _rn) AS channel_name,
    arg_max(channel_type, _rn) AS channel_type
FROM hooklake_messages_ordered
-- conversation_id is one value per group; grouping by it lets a filter on it reach the scan.
GROUP BY conversation_id, channel_id, customer_id, _started_at;
