-- explore_read_conversation: the messages of one conversation ($conversation_id), in order,
-- with what is needed to show them as the customer saw them.
SELECT
    position,
    ts,
    sender_type,
    sender_name,
    type,
    text,
    url,
    raw AS message,
    action
FROM messages
WHERE conversation_id = $conversation_id
ORDER BY position;
