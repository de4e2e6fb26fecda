-- hooklake_messages_unique read from a conversation index computed for another session gap:
-- its rows are already deduplicated, so only the ordering windows (messages_ordered.sql) run
-- again. They still sort each customer's stream: DuckDB does not know the files are sorted.
CREATE OR REPLACE TEMP VIEW hooklake_messages_unique AS
SELECT * EXCLUDE (
    role, _agent_evidence, _rn, _started_at, _run, conversation_id, position, _conversation, _turn,
    _handover, _shown
)
FROM hooklake_index_rows;
