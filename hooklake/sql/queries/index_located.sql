-- Where the base's rows an index update needs lie (index/recompute.py, _read_located): the base's message
-- rows of the touched customers in the spans index_touched.sql found, and not replaced by a
-- newer generation (as in index_rows.sql), as (file, row number). Only the few columns these
-- conditions read are decoded; index_located_rows.sql then reads the rows' other columns from
-- the pages that hold them alone. The base's files are those of hooklake_index_base
-- (db.register_parquet), {{hive_types}} its partition columns, {{touched}} narrows the scan to
-- the touched customers (on `i`; the join with the spans picks their rows).
CREATE OR REPLACE TEMP TABLE hooklake_index_located AS
SELECT i.filename, i.file_row_number
FROM read_parquet(
    getvariable('hooklake_index_base'),
    filename = true,
    file_row_number = true,
    hive_partitioning = true,
    hive_types = {{hive_types}}
) AS i
JOIN hooklake_index_touched AS t
    ON t.channel_id IS NOT DISTINCT FROM i.channel_id
    AND t.customer_id = i.customer_id
    AND i.ts >= t.since
    AND i.ts < coalesce(t.until, 'infinity'::TIMESTAMPTZ)
LEFT JOIN hooklake_index_spans AS c
    ON c.channel_id IS NOT DISTINCT FROM i.channel_id
    AND c.customer_id = i.customer_id
WHERE i.kind = 'message'
  AND {{touched}}
  AND (
      c.spans IS NULL
      OR NOT list_bool_or(list_transform(c.spans, lambda s: i.ts >= s.since AND i.ts < s.until))
  );
