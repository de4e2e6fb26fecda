-- The two kinds of rows of hooklake_index_all (index_rows.sql or index_base_rows.sql):
-- hooklake_index_rows, one per message in the columns of hooklake_messages_ordered, and
-- hooklake_index_conversations, one per conversation. A filter on kind reaches the scans as a
-- partition filter: each reads only its own files.
CREATE OR REPLACE TEMP VIEW hooklake_index_rows AS
SELECT * EXCLUDE (kind) FROM hooklake_index_all WHERE kind = 'message';

CREATE OR REPLACE TEMP VIEW hooklake_index_conversations AS
SELECT * EXCLUDE (kind) FROM hooklake_index_all WHERE kind = 'conversation';
