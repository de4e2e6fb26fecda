-- The messages a dataset build reads, in build order (conversation, then position), from a lake
-- read through its conversation index: the columns of hooklake.datasets.shape.shape_batch.
--
-- The index stores each message with its stored JSON (`raw`, the first delivery's), so no
-- window runs and the stored message is a plain column, read here for the types whose
-- options, caption or address live in it (not text, buttons or silent types). Without an
-- index the views would carry it through their window sorts: build_messages.sql.
--
-- `customer` (known names and fields for redaction) only when $with_customer; `payload` for
-- rating buttons (feedback builds).
-- Parameters: $channels (BIGINT[] or NULL = all), $hooks (VARCHAR[] or NULL = all),
-- $with_customer (BOOLEAN).
SELECT
    conversation_id,
    channel_id,
    customer_id,
    message_key,
    sender_type,
    type,
    text,
    url,
    CASE
        WHEN coalesce(type, '') NOT IN (
            'text', 'button', 'event', 'note', 'notes', 'typing', 'read', 'hidden', 'sys'
        ) THEN raw
    END AS message,
    payload,
    CASE WHEN $with_customer THEN customer END AS customer,
    date
FROM messages
WHERE ($channels::BIGINT[] IS NULL OR list_contains($channels::BIGINT[], channel_id))
  AND ($hooks::VARCHAR[] IS NULL OR list_contains($hooks::VARCHAR[], hook))
  AND sender_type IN ('customer', 'bot', 'agent')
ORDER BY conversation_id, position;
