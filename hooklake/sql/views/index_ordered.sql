-- hooklake_messages_ordered read from the conversation index, computed for the Lake's session
-- gap: no deduplication, sort or window runs at query time.
CREATE OR REPLACE TEMP VIEW hooklake_messages_ordered AS
SELECT * EXCLUDE (_conversation, _turn, _handover, _shown) FROM hooklake_index_rows;
