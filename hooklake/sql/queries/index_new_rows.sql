-- The rows an index update adds (index/recompute.py): the stored rows the messages table gained since the
-- version the index covers (index_touched.sql then finds what they change).
--
-- hooklake_index_added: rows of the data files the messages table gained,
-- hooklake_index_removed: rows of the files it lost. A compaction removes files and adds the
-- same rows in new ones, so rows found among the removed ones are not new.
CREATE OR REPLACE TEMP TABLE hooklake_index_new_rows AS
SELECT a.*
FROM hooklake_index_added AS a
WHERE NOT EXISTS (
    SELECT 1
    FROM hooklake_index_removed AS r
    WHERE r.message_key = a.message_key
      AND r.received_at = a.received_at
      AND r.source = a.source
);
