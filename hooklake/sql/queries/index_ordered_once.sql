-- Before an index write (index_write.sql): hooklake_messages_ordered computed once for the
-- customers being written and kept in a temporary table. The write reads it five times (its
-- message rows, conversation figures, turns, answers, hand-offs), and as a view each read
-- would re-sort the wide rows twice (dedupe and ordering windows): computed once, an update's
-- write takes half the CPU. A temporary table spills to disk past the memory limit.
CREATE OR REPLACE TEMP TABLE hooklake_ordered_once AS
SELECT * FROM hooklake_messages_ordered;

CREATE OR REPLACE TEMP VIEW hooklake_messages_ordered AS
SELECT * FROM hooklake_ordered_once;
