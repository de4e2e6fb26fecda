-- Stored reject rows from the file list in the variable hooklake_rejected_files.
CREATE OR REPLACE TEMP VIEW hooklake_rejected_rows AS
SELECT *
FROM read_parquet(
    getvariable('hooklake_rejected_files'),
    hive_partitioning = true,
    hive_types = {'date': DATE}
);
