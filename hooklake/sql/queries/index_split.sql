-- An index rebuild in several chunks (index/rebuild.py): the stored rows (hooklake_message_files) split
-- once into one folder of Parquet files per chunk, `_range=<k>/` under '{{folder}}', where k is
-- the first of the chunks' conditions the row meets ({{cases}}: WHEN <streams> THEN k, from
-- stream_ranges; together they cover every row once). Each chunk then reads its own files
-- (message_rows_range.sql). Filtering the whole table for each chunk instead read and
-- decompressed every stored row once per chunk: a rebuild's time grew with the square of
-- the lake. PARTITION_BY streams: DuckDB flushes what it holds for the folders every
-- partitioned_write_flush_threshold rows (set by index/rebuild.py to a share of a chunk).
COPY (
    SELECT *
    FROM (SELECT *, CASE {{cases}} END AS _range FROM hooklake_message_files)
    WHERE _range IS NOT NULL
) TO '{{folder}}' (FORMAT parquet, PARTITION_BY (_range), COMPRESSION zstd);
