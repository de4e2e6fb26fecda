-- The stored rows an index update's input takes its spans' rows from (index_input.sql), when it
-- located the base's (index_located.sql; hooklake_index_located_rows reads them): those, and
-- the newer generations' message rows that count (few; filtered in index_input.sql's scan), in
-- the columns of hooklake_index_rows.
CREATE OR REPLACE TEMP VIEW hooklake_index_stored AS
SELECT * EXCLUDE (_since, _until, layer, generation, kind)
FROM hooklake_index_located_rows
UNION ALL BY NAME
SELECT * EXCLUDE (_since, _until, layer, generation, kind)
FROM hooklake_index_newer_rows
WHERE kind = 'message';
