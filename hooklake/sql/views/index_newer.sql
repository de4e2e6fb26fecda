-- hooklake_index_newer: the index's generations newer than its base, committed
-- (hooklake_index_increments) and computed by this reader from rows the index does not cover
-- yet (hooklake_index_pending); see index_rows.sql. It reads those of the two that
-- hold rows, and unites them only when both do: every view defined on top binds this one again
-- (an index up to date has nothing pending, and a union costs each binding half a millisecond).
CREATE OR REPLACE TEMP VIEW hooklake_index_newer AS
{{sources}};
