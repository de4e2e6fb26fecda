-- hooklake_index_all: one version of the conversation index (index.py), its message and
-- conversation rows told apart by `kind` (index_kinds.sql splits them). The base (hooklake_index_base) holds every
-- customer's whole stream; each newer generation of a customer (hooklake_index_increments,
-- committed; hooklake_index_pending, computed by this reader from rows the index does not
-- cover yet) holds the customer's stream from _since on (null: all of it), recomputed.
-- A row counts from the newest generation that holds its time: a generation's rows count up
-- to the earliest _since of the customer's newer generations. The Lake registers only the
-- newest base and the increments newer than it.
CREATE OR REPLACE TEMP VIEW hooklake_index_newer AS
SELECT * FROM hooklake_index_increments
UNION ALL BY NAME
SELECT * FROM hooklake_index_pending;

CREATE OR REPLACE TEMP VIEW hooklake_index_cuts AS
WITH generations AS (
    SELECT channel_id, customer_id, generation, min(_since) AS since
    FROM hooklake_index_newer
    GROUP BY channel_id, customer_id, generation
)
SELECT
    *,
    min(coalesce(since, '-infinity'::TIMESTAMPTZ)) OVER (
        PARTITION BY channel_id, customer_id
        ORDER BY generation DESC
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
    ) AS until
FROM generations;

-- Base rows count before the earliest _since of the customer's newer generations. A hash join
-- on the customer (not NOT EXISTS with the time condition, which DuckDB turns into a grouping
-- of every base row); a filter on channel_id, customer_id or conversation_id still reaches
-- the base's Parquet scan, so a point query reads only the row groups that hold its rows.
CREATE OR REPLACE TEMP VIEW hooklake_index_all AS
WITH base_cuts AS (
    SELECT channel_id, customer_id, min(coalesce(since, '-infinity'::TIMESTAMPTZ)) AS until
    FROM hooklake_index_cuts
    GROUP BY channel_id, customer_id
)
SELECT b.* EXCLUDE (_since, layer, generation)
FROM hooklake_index_base AS b
LEFT JOIN base_cuts AS c
    ON c.channel_id IS NOT DISTINCT FROM b.channel_id
    AND c.customer_id = b.customer_id
WHERE c.until IS NULL OR b.ts < c.until
UNION ALL BY NAME
SELECT n.* EXCLUDE (_since, layer, generation)
FROM hooklake_index_newer AS n
JOIN hooklake_index_cuts AS c
    ON c.channel_id IS NOT DISTINCT FROM n.channel_id
    AND c.customer_id = n.customer_id
    AND c.generation = n.generation
WHERE c.until IS NULL OR n.ts < c.until;
