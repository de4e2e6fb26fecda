-- The rows index_located.sql found in one base file ('{{file}}'; row numbers {{rows}}): a filter
-- on the row number reaches the Parquet scan, which reads only the pages holding those rows.
-- Without the columns an update recomputes (the ordering's and the summaries, which
-- index_input.sql leaves out too): read into a table, they would be decoded for nothing, and
-- the summaries are the widest columns (0.55 s instead of 1.0 s for 900 rows of a 10M-message
-- index). {{hive_types}}: the index's partition columns.
SELECT * EXCLUDE (
    file_row_number, role, _agent_evidence, _rn, _started_at, _run, conversation_id, position,
    _conversation, _turn, _handover, _shown
)
FROM read_parquet(
    '{{file}}',
    file_row_number = true,
    hive_partitioning = true,
    hive_types = {{hive_types}}
)
WHERE file_row_number IN ({{rows}})
