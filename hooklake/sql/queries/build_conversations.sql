-- The conversations a dataset build reads, one row each, in build order: those with a message
-- on the recipe's channels and hooks, started between its since and until dates (UTC).
-- group_rank numbers the split groups (customers or conversations) in sorted order, so the
-- split can be computed on small integers; n_messages sizes the progress bar.
-- Parameters: $channels (BIGINT[] or NULL = all), $hooks (VARCHAR[] or NULL = all),
-- $since, $until (DATE or NULL), $group_by ('customer' | 'conversation').
WITH picked AS (
    SELECT
        conversation_id,
        any_value(channel_id) AS channel_id,
        any_value(customer_id) AS customer_id,
        count(*) AS n_messages,
        min(date) AS first_date
    FROM messages
    WHERE ($channels::BIGINT[] IS NULL OR list_contains($channels::BIGINT[], channel_id))
      AND ($hooks::VARCHAR[] IS NULL OR list_contains($hooks::VARCHAR[], hook))
      AND sender_type IN ('customer', 'bot', 'agent')
    GROUP BY conversation_id
)
SELECT
    conversation_id,
    dense_rank() OVER (
        ORDER BY CASE
            WHEN $group_by = 'customer' THEN concat(channel_id, '-', customer_id)
            ELSE conversation_id
        END
    ) AS group_rank,
    n_messages
FROM picked
WHERE ($since::DATE IS NULL OR first_date >= $since::DATE)
  AND ($until::DATE IS NULL OR first_date <= $until::DATE)
ORDER BY conversation_id;
