-- Spark SQL twin of hooklake/datasets/sql/build_messages.sql (DuckDB): the messages a dataset
-- build renders, with each conversation's split. {{messages}} is hooklake.spark.order's ordered
-- rows; {{selection}} the (conversation_id, split) rows the driver picked. Same columns as the
-- DuckDB query plus `position`: instead of one global ORDER BY, hooklake.spark.build range-
-- partitions by conversation_id and sorts each partition by (conversation_id, position), so
-- every partition holds whole conversations and the partitions come back in order.
-- Parameters: :channels, :hooks (as in build_conversations.sql), :with_customer (BOOLEAN).
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
    CASE WHEN :with_customer THEN m.customer END AS customer,
    s.split,
    m.position
FROM {{messages}} AS m
JOIN {{selection}} AS s ON m.conversation_id = s.conversation_id
WHERE (:channels IS NULL OR array_contains(CAST(:channels AS ARRAY<BIGINT>), m.channel_id))
  AND (:hooks IS NULL OR array_contains(CAST(:hooks AS ARRAY<STRING>), m.hook))
  AND m.sender_type IN ('customer', 'bot', 'agent')
