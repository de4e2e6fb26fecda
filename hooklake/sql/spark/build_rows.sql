-- The ordered messages a Spark build reads, cut to the rows and columns build_messages.sql
-- uses, so the build can cache them: without the cache Spark would run the whole ordering
-- again for the count and for the range partitioning's sample (DuckDB's build reads the
-- `messages` view directly). Only what rendering needs is kept, as in
-- hooklake/sql/queries/build_messages.sql: the stored
-- message (`raw`) only for types other than text and buttons, `customer` only when
-- :with_customer. {{messages}} is hooklake.spark.order's ordered rows.
SELECT
    conversation_id,
    position,
    channel_id,
    customer_id,
    hook,
    date,
    message_key,
    sender_type,
    type,
    text,
    url,
    CASE WHEN type NOT IN ('text', 'button') THEN raw END AS raw,
    payload,
    CASE WHEN :with_customer THEN customer END AS customer
FROM {{messages}}
WHERE sender_type IN ('customer', 'bot', 'agent')
