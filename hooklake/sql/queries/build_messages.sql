-- The messages a dataset build renders, in conversation order, with each conversation's split.
-- hooklake_build_selection (conversation_id, split) is the Arrow table of conversations the
-- build picked (build_conversations.sql) and their split codes; the join keeps only those.
-- Only what rendering needs is read: the whole stored message (`raw`) only for types whose
-- options, caption or address live in it (not text and buttons), `customer` (known names and
-- fields for redaction) only when $with_customer; `payload` for rating buttons (feedback
-- builds).
SELECT
    m.conversation_id,
    m.channel_id,
    m.customer_id,
    m.message_key,
    m.sender_type,
    m.type,
    m.text,
    m.url,
    CASE WHEN m.type NOT IN ('text', 'button') THEN m.raw END AS message,
    m.payload,
    CASE WHEN $with_customer THEN m.customer END AS customer,
    s.split
FROM messages AS m
JOIN hooklake_build_selection AS s USING (conversation_id)
WHERE ($channels::BIGINT[] IS NULL OR list_contains($channels::BIGINT[], m.channel_id))
  AND ($hooks::VARCHAR[] IS NULL OR list_contains($hooks::VARCHAR[], m.hook))
  AND m.sender_type IN ('customer', 'bot', 'agent')
ORDER BY m.conversation_id, m.position;
