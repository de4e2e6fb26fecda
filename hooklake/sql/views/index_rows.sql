-- hooklake_index_rows: one version of the conversation index (index.py), one row per message,
-- in the columns of hooklake_messages_ordered. Each customer's rows come from the newest
-- generation that holds them: their newest increment (hooklake_index_increments, committed;
-- hooklake_index_pending, computed by this reader from rows the index does not cover yet),
-- else the base (hooklake_index_base). The Lake registers only the newest base and the
-- increments newer than it.
CREATE OR REPLACE TEMP VIEW hooklake_index_newer AS
SELECT * FROM hooklake_index_increments
UNION ALL BY NAME
SELECT * FROM hooklake_index_pending;

CREATE OR REPLACE TEMP VIEW hooklake_index_latest AS
SELECT channel_id, customer_id, max(generation) AS generation
FROM hooklake_index_newer
GROUP BY channel_id, customer_id;

-- A filter on channel_id, customer_id or conversation_id reaches the base's Parquet scan
-- through the anti-join, so a point query reads only the row groups that hold its rows.
CREATE OR REPLACE TEMP VIEW hooklake_index_rows AS
SELECT b.* EXCLUDE (layer, generation)
FROM hooklake_index_base AS b
WHERE NOT EXISTS (
    SELECT 1
    FROM hooklake_index_latest AS l
    WHERE l.channel_id IS NOT DISTINCT FROM b.channel_id
      AND l.customer_id IS NOT DISTINCT FROM b.customer_id
)
UNION ALL BY NAME
SELECT n.* EXCLUDE (layer, generation)
FROM hooklake_index_newer AS n
JOIN hooklake_index_latest AS l
    ON l.channel_id IS NOT DISTINCT FROM n.channel_id
    AND l.customer_id IS NOT DISTINCT FROM n.customer_id
    AND l.generation = n.generation;
