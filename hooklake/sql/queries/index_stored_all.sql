-- The stored rows an index update's input takes its spans' rows from (index_input.sql): every
-- message row of the index, filtered in the same scan (one pass over the index's columns).
CREATE OR REPLACE TEMP VIEW hooklake_index_stored AS
SELECT * FROM hooklake_index_rows;
