-- hooklake_index_newer: the index's generations newer than its base, committed
-- (hooklake_index_increments) and computed by this reader from rows the index does not cover
-- yet (hooklake_index_pending); see index_rows.sql.
CREATE OR REPLACE TEMP VIEW hooklake_index_newer AS
SELECT * FROM hooklake_index_increments
UNION ALL BY NAME
SELECT * FROM hooklake_index_pending;
