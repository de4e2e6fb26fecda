-- The messages a dataset build reads, in build order (conversation, then position), from a lake
-- read through its conversation index computed for the build's session gap: the columns of
-- hooklake.datasets.shape.shape_batch.
--
-- The index stores each message in conversation order with, for the types whose options,
-- caption or address live in the stored message (not text, buttons or silent types), the part
-- of it rendering reads (`_shown`, computed once when the index is written: index_write.sql).
-- So no window runs, and the stored message is neither read nor parsed here (parsing it took
-- over half of this query's time). Without an index the views would carry it through their
-- window sorts: build_messages.sql.
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
SELECT
    conversation_id,
    channel_id,
    customer_id,
    message_key,
    sender_type,
    type,
    text,
    url,
    _shown AS message,
    payload,
    CASE WHEN $with_customer THEN customer END AS customer,
    date,
    position
FROM hooklake_index_rows
WHERE ($channels::BIGINT[] IS NULL OR list_contains($channels::BIGINT[], channel_id))
  AND ($hooks::VARCHAR[] IS NULL OR list_contains($hooks::VARCHAR[], hook))
  AND sender_type IN ('customer', 'bot', 'agent')
  AND ($lo::VARCHAR IS NULL OR conversation_id >= $lo::VARCHAR
       OR ($hi::VARCHAR IS NULL AND conversation_id IS NULL))
  AND ($hi::VARCHAR IS NULL OR conversation_id < $hi::VARCHAR)
ORDER BY conversation_id, position;
