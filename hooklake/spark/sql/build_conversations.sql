-- Spark SQL twin of hooklake/datasets/sql/build_conversations.sql (DuckDB): the conversations a
-- dataset build reads, one row each, with group_rank numbering the split groups (customers or
-- conversations) in sorted order and n_messages. The driver collects these rows and assigns
-- splits with the same Python code as the DuckDB build (hooklake.datasets.split).
-- {{messages}} is hooklake.spark.order's ordered rows. Parameters: :channels (ARRAY<BIGINT> or
-- NULL = all), :hooks (ARRAY<STRING> or NULL = all), :since, :until (DATE or NULL), :group_by
-- ('customer' | 'conversation').
-- Spark's concat() is NULL when any argument is; DuckDB's skips NULLs: the customer key
-- coalesces its parts to '' as DuckDB does.
WITH picked AS (
    SELECT
        conversation_id,
        any_value(channel_id) AS channel_id,
        any_value(customer_id) AS customer_id,
        count(*) AS n_messages,
        min(date) AS first_date
    FROM {{messages}}
    WHERE (:channels IS NULL OR array_contains(CAST(:channels AS ARRAY<BIGINT>), channel_id))
      AND (:hooks IS NULL OR array_contains(CAST(:hooks AS ARRAY<STRING>), hook))
      AND sender_type IN ('customer', 'bot', 'agent')
    GROUP BY conversation_id
)
SELECT
    conversation_id,
    CAST(dense_rank() OVER (
        ORDER BY CASE
            WHEN :group_by = 'customer' THEN concat(
                coalesce(CAST(channel_id AS STRING), ''), '-',
                coalesce(CAST(customer_id AS STRING), '')
            )
            ELSE conversation_id
        END NULLS LAST
    ) AS BIGINT) AS group_rank,
    n_messages
FROM picked
WHERE (:since IS NULL OR first_date >= CAST(:since AS DATE))
  AND (:until IS NULL OR first_date <= CAST(:until AS DATE))
ORDER BY conversation_id NULLS LAST
