-- The messages a dataset build reads, in build order (conversation, then position), one row
-- per message: the columns hooklake.datasets.shape.shape_batch takes, plus `_dup` ordering.
-- Only what rendering needs is read. The stored message (`raw`), read for the types whose
-- options, caption or address live in it (not text, buttons or silent types), is joined from
-- the stored rows after the views have ordered the messages: carried through their window
-- sorts it would cost five times the rest of the query. A message delivered twice joins twice;
-- ordered by arrival, the first row of each (conversation_id, position) is the one the
-- messages view keeps (the stream drops the others). `customer` (known names and fields for
-- redaction) only when $with_customer; `payload` for rating buttons (feedback builds).
-- Parameters: $channels (BIGINT[] or NULL = all), $hooks (VARCHAR[] or NULL = all),
-- $with_customer (BOOLEAN).
WITH picked AS (
    SELECT
        conversation_id,
        position,
        channel_id,
        customer_id,
        message_key,
        sender_type,
        type,
        text,
        url,
        payload,
        CASE WHEN $with_customer THEN customer END AS customer,
        date
    FROM messages
    WHERE ($channels::BIGINT[] IS NULL OR list_contains($channels::BIGINT[], channel_id))
      AND ($hooks::VARCHAR[] IS NULL OR list_contains($hooks::VARCHAR[], hook))
      AND sender_type IN ('customer', 'bot', 'agent')
),
stored AS (
    SELECT message_key, raw, received_at, source
    FROM hooklake_message_rows
    WHERE coalesce(type, '') NOT IN (
        'text', 'button', 'event', 'note', 'notes', 'typing', 'read', 'hidden', 'sys'
    )
)
SELECT
    p.conversation_id,
    p.channel_id,
    p.customer_id,
    p.message_key,
    p.sender_type,
    p.type,
    p.text,
    p.url,
    s.raw AS message,
    p.payload,
    p.customer,
    p.date,
    p.position
FROM picked AS p
LEFT JOIN stored AS s USING (message_key)
ORDER BY p.conversation_id, p.position, s.received_at, s.source;
