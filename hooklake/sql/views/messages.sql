-- messages: one row per message, however often Landbot delivered it, in conversation order
-- (hooklake_messages_ordered, from the raw tables or from the conversation index).

CREATE OR REPLACE TEMP VIEW messages AS
SELECT
    * EXCLUDE (role, _agent_evidence, _rn, _started_at, _run, conversation_id, position),
    conversation_id,
    position,
    role
FROM hooklake_messages_ordered;
