-- Stored message rows, duplicates included, from the file list the Lake put in the variable
-- hooklake_messages_files (sealed, renamed, not tombstoned files; a snapshot, see Lake.refresh).
-- The `date` column comes from the date=YYYY-MM-DD directory names; files do not hold it.
-- Columns are taken from the first file: every file is written with layout's explicit schema,
-- and compaction rewrites old files with the current one. (union_by_name would read every
-- file's footer on every query, which small-file lakes cannot afford.)
CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT *
FROM read_parquet(
    getvariable('hooklake_messages_files'),
    hive_partitioning = true,
    hive_types = {'date': DATE}
);
