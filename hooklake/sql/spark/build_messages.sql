-- Spark SQL twin of hooklake/sql/queries/build_messages.sql (DuckDB): the messages a dataset
-- build renders, in the columns of hooklake.datasets.shape.BUILD_COLUMNS plus `position`.
-- {{messages}} is the cached build_rows.sql. Instead of one global ORDER BY,
-- hooklake.spark.build range-partitions by conversation_id and sorts each partition by
-- (conversation_id, position), so every partition holds whole conversations and the
-- partitions come back in order. The stored message (`message`) is already cut to the types
-- that need it by build_rows.sql; the core ignores it for the others.
-- Parameters: :channels (ARRAY<BIGINT> or NULL = all), :hooks (ARRAY<STRING> or NULL = all).
SELECT
    conversation_id,
    channel_id,
    customer_id,
    message_key,
    sender_type,
    type,
    text,
    url,
    raw AS message,
    payload,
    customer,
    date,
    position
FROM {{messages}}
WHERE (:channels IS NULL OR array_contains(CAST(:channels AS ARRAY<BIGINT>), channel_id))
  AND (:hooks IS NULL OR array_contains(CAST(:hooks AS ARRAY<STRING>), hook))
