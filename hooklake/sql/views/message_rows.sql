-- Stored message rows, duplicates included: the version of the messages Delta table the Lake
-- reads, registered in DuckDB as a pyarrow dataset (filters and projections are pushed down).
CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT * FROM hooklake_message_files;
