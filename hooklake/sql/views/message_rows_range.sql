-- hooklake_message_rows for one chunk of an index rebuild (index/rebuild.py) that split the stored rows
-- by chunk first (queries/index_split.sql): the files of the chunk's folder, listed in the
-- variable hooklake_index_range_files. Read without hive partitioning: the folder's `_range`
-- is not a column of the stored rows.
CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT * FROM read_parquet(getvariable('hooklake_index_range_files'), hive_partitioning = false);
