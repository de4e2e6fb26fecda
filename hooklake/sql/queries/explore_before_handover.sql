-- explore_before_handover: the last $n things each customer said before their conversation
-- went to a human agent, nth_before = 1 being the very last. Only customer messages count;
-- they may come from earlier in the conversation, before the bot's handover message.
WITH said AS (
    SELECT
        h.conversation_id,
        h.channel_id,
        h.assigned_at,
        h.position AS handover_position,
        m.ts,
        m.type,
        m.text,
        m.url,
        m.raw AS message,
        row_number() OVER (
            PARTITION BY h.conversation_id, h.position ORDER BY m.position DESC
        ) AS nth_before
    FROM handovers AS h
    JOIN messages AS m
        ON m.conversation_id = h.conversation_id
        AND m.position < h.position
        AND m.sender_type = 'customer'
)
SELECT
    s.conversation_id,
    ch.channel,
    s.assigned_at,
    s.nth_before,
    epoch(s.assigned_at - s.ts) AS seconds_before,
    s.type,
    s.text,
    s.url,
    s.message
FROM said AS s
JOIN hooklake_explore_channels AS ch ON ch.channel_id IS NOT DISTINCT FROM s.channel_id
WHERE s.nth_before <= $n
ORDER BY s.assigned_at, s.conversation_id, s.handover_position, s.nth_before;
