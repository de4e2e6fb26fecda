-- The messages a dataset build reads, in build order (conversation, then position): the
-- columns of hooklake.datasets.shape.shape_batch, plus `position` and `_part`.
--
-- Only what rendering needs is read. The stored message (`raw`) is needed for the types whose
-- options, caption or address live in it (not text, buttons or silent types), about a fifth
-- of the messages. Carried through the views' window sorts it would cost five times the rest
-- of the query, and joined to every message it would put the stored messages in a hash table
-- that grows with the lake. So it comes as rows of its own (`_part` 1), sorted in right after
-- their message (`_part` 0): the join that finds their conversation and position holds only
-- the keys of the messages that need them. A message delivered more than once has one such
-- row per delivery, first arrival first (the one the messages view keeps); the stream takes
-- the first and drops the others. `picked` is MATERIALIZED: the views' windows run once for
-- both the messages and the keys that need their stored message (a third less time than
-- running them twice; measured: the same peak memory at 1M and 4M messages). Each comes cut
-- to the part rendering reads (hooklake_shown, macros.sql).
--
-- This is for lakes read without a conversation index. With one, the views read the stored
-- message as a column of the index: build_messages_indexed.sql.
--
-- `customer` (known names and fields for redaction) only when $with_customer; `payload` for
-- rating buttons (feedback builds).
-- Parameters: $channels (BIGINT[] or NULL = all), $hooks (VARCHAR[] or NULL = all),
-- $with_customer (BOOLEAN).
WITH picked AS MATERIALIZED (
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
needed AS (
    SELECT message_key, conversation_id, position
    FROM picked
    WHERE hooklake_shown_from_stored(type)
),
stored AS (
    SELECT
        n.conversation_id, n.position, hooklake_shown_parts(s.type, s.raw) AS parts,
        s.received_at, s.source
    FROM hooklake_message_rows AS s
    JOIN needed AS n USING (message_key)
    WHERE hooklake_shown_from_stored(s.type)
)
SELECT
    conversation_id, position, 0 AS _part, channel_id, customer_id, message_key, sender_type,
    type, text, url, NULL::VARCHAR AS message, payload, customer, date,
    NULL::TIMESTAMPTZ AS received_at, NULL::VARCHAR AS source
FROM picked
UNION ALL
SELECT
    conversation_id, position, 1 AS _part, NULL, NULL, NULL, NULL,
    NULL, NULL, NULL, hooklake_shown(parts), NULL, NULL, NULL,
    received_at, source
FROM stored
ORDER BY conversation_id, position, _part, received_at, source;
