-- The rows index_located.sql found in one base file ('{{file}}'; row numbers {{rows}}), every
-- column: a filter on the row number reaches the Parquet scan, which reads only the pages
-- holding those rows. {{hive_types}}: the index's partition columns.
SELECT * EXCLUDE (file_row_number)
FROM read_parquet(
    '{{file}}',
    file_row_number = true,
    hive_partitioning = true,
    hive_types = {{hive_types}}
)
WHERE file_row_number IN ({{rows}})
