-- hooklake_conversation_counts and hooklake_turns read from the conversation index, for the
-- session gap it was computed with: each conversation's figures sit on its first message
-- (_conversation) and each turn on its first message (_turn), so these are filtered scans
-- instead of groupings of every message. Same columns as conversation_counts.sql and
-- turns.sql compute.
CREATE OR REPLACE TEMP VIEW hooklake_conversation_counts AS
SELECT conversation_id, channel_id, customer_id, _started_at, _conversation.*
FROM hooklake_index_rows
WHERE _conversation.n_messages IS NOT NULL;

CREATE OR REPLACE TEMP VIEW hooklake_turns AS
SELECT conversation_id, _turn.*
FROM hooklake_index_rows
WHERE _turn.turn_index IS NOT NULL;
