-- The figures of `hooklake stats`, in one pass over each view's inputs.
SELECT
    m.messages,
    (SELECT count(*) FROM hooklake_message_rows) AS stored_rows,
    m.conversations,
    m.customers,
    m.channels,
    m.first_message_at,
    m.last_message_at,
    (SELECT count(*) FROM hooklake_rejected_rows) AS rejects
FROM (
    SELECT
        count(*) AS messages,
        count(*) FILTER (WHERE position = 1) AS conversations,
        count(DISTINCT (channel_id, customer_id)) AS customers,
        count(DISTINCT channel_id) AS channels,
        min(ts) AS first_message_at,
        max(ts) AS last_message_at
    FROM messages
) AS m;
