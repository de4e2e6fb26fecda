-- hooklake_index_all: one version of the conversation index (index/read.py), its message and
-- conversation rows told apart by `kind` (index_kinds.sql splits them). The base
-- (hooklake_index_base) holds every customer's whole stream; each newer generation of a
-- customer (hooklake_index_increments, committed; hooklake_index_pending, computed by this
-- reader from rows the index does not cover yet) holds spans of the customer's stream,
-- recomputed: each row carries the span it was computed for, [_since, _until) (null: open).
-- A row counts unless a newer generation holds a span its time falls in. The Lake registers
-- only the newest base and the increments newer than it. The newer generations' rows and
-- spans: index_newer.sql, index_spans.sql.
-- Base rows count outside every span of the customer's newer generations. A hash join on the
-- customer (not NOT EXISTS with the time condition, which DuckDB turns into a grouping of every
-- base row); a filter on channel_id, customer_id or conversation_id still reaches the base's
-- Parquet scan, so a point query reads only the row groups that hold its rows.
CREATE OR REPLACE TEMP VIEW hooklake_index_all AS
SELECT b.* EXCLUDE (_since, _until, layer, generation)
FROM hooklake_index_base AS b
LEFT JOIN hooklake_index_spans AS c
    ON c.channel_id IS NOT DISTINCT FROM b.channel_id
    AND c.customer_id = b.customer_id
WHERE c.spans IS NULL
   OR NOT list_bool_or(list_transform(c.spans, lambda s: b.ts >= s.since AND b.ts < s.until))
UNION ALL BY NAME
SELECT * EXCLUDE (_since, _until, layer, generation)
FROM hooklake_index_newer_rows;
