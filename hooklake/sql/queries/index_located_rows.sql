-- The rows index_located.sql found in one base file ('{{file}}'; row numbers {{rows}}): a filter
-- on the row number reaches the Parquet scan, which reads only the pages holding those rows.
-- Read as a view, so index_input.sql's scan decodes only the columns it keeps (the summaries,
-- the widest, it leaves out: 900 rows of a 10M-message index in 0.55 s instead of 1.0 s).
-- {{hive_types}}: the index's partition columns.
SELECT * EXCLUDE (file_row_number)
FROM read_parquet(
    '{{file}}',
    file_row_number = true,
    hive_partitioning = true,
    hive_types = {{hive_types}}
)
WHERE file_row_number IN ({{rows}})
