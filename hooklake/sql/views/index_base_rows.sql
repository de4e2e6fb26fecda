-- hooklake_index_all when the index version read has no increments and the reader computed
-- no rows (the index is folded and up to date): its base, as it is (see index_rows.sql).
CREATE OR REPLACE TEMP VIEW hooklake_index_all AS
SELECT * EXCLUDE (_since, _until, layer, generation)
FROM hooklake_index_base;

-- No newer generation (index_spans.sql then finds no spans and no newer rows: what an update's
-- located read resolves the base's rows against, queries/index_located.sql).
CREATE OR REPLACE TEMP VIEW hooklake_index_newer AS
SELECT * FROM hooklake_index_base WHERE false;
