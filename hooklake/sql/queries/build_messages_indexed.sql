-- The messages a dataset build reads, in build order (conversation, then position), from a lake
-- read through its conversation index: the columns of hooklake.datasets.shape.shape_batch.
--
-- The index stores each message with its stored JSON (`raw`, the first delivery's), so no
-- window runs and the stored message is a plain column, read here for the types whose
-- options, caption or address live in it (not text, buttons or silent types), cut to the part
-- rendering reads (hooklake_shown, macros.sql). Without an index the views would carry it
-- through their window sorts: build_messages.sql.
--
-- One range of conversation ids at a time ($lo inclusive, $hi exclusive; NULL: open-ended, and
-- the last range also holds messages without a conversation id, which sort last): the index
-- hands the range's rows over without a window, so a build sorts the lake range by range,
-- each sort a fraction of the whole and each range ready while the previous one is shaped
-- (build_ranges.sql cuts them).
--
-- `customer` (known names and fields for redaction) only when $with_customer; `payload` for
-- rating buttons (feedback builds).
-- Parameters: $channels (BIGINT[] or NULL = all), $hooks (VARCHAR[] or NULL = all),
-- $with_customer (BOOLEAN), $lo and $hi (VARCHAR or NULL).
SELECT * EXCLUDE (parts), hooklake_shown(parts) AS message
FROM (
    SELECT
        conversation_id,
        channel_id,
        customer_id,
        message_key,
        sender_type,
        type,
        text,
        url,
        json_extract(
            CASE WHEN hooklake_shown_from_stored(type) THEN raw END, hooklake_shown_paths()
        ) AS parts,
        payload,
        CASE WHEN $with_customer THEN customer END AS customer,
        date,
        position
    FROM messages
    WHERE ($channels::BIGINT[] IS NULL OR list_contains($channels::BIGINT[], channel_id))
      AND ($hooks::VARCHAR[] IS NULL OR list_contains($hooks::VARCHAR[], hook))
      AND sender_type IN ('customer', 'bot', 'agent')
      AND ($lo::VARCHAR IS NULL OR conversation_id >= $lo::VARCHAR
           OR ($hi::VARCHAR IS NULL AND conversation_id IS NULL))
      AND ($hi::VARCHAR IS NULL OR conversation_id < $hi::VARCHAR)
)
ORDER BY conversation_id, position;
