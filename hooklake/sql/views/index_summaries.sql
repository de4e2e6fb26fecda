-- hooklake_conversation_counts, hooklake_turns and hooklake_handovers read from the
-- conversation index, for the session gap it was computed with: each conversation's figures
-- sit on its conversation row (_conversation), each turn on its first message (_turn), each
-- hand-off on the message it starts at (_handover), so these are filtered scans instead of
-- windows and groupings over every message; a customer turn's answer sits on it too
-- (_turn.response), so turn pairs are a scan as well. Same columns as conversation_counts.sql,
-- turn_rows.sql, turn_pair_rows.sql and handover_rows.sql compute.
CREATE OR REPLACE TEMP VIEW hooklake_conversation_counts AS
SELECT conversation_id, channel_id, customer_id, _started_at, _conversation.*
FROM hooklake_index_conversations;

CREATE OR REPLACE TEMP VIEW hooklake_turns AS
SELECT conversation_id, _turn.* EXCLUDE (response, response_has_agent)
FROM hooklake_index_rows
WHERE _turn.turn_index IS NOT NULL;

CREATE OR REPLACE TEMP VIEW hooklake_turn_pairs AS
SELECT
    conversation_id,
    _turn.turn_index,
    _turn.text AS prompt,
    _turn.response,
    _turn.response_has_agent AS has_agent
FROM hooklake_index_rows
WHERE _turn.response_has_agent IS NOT NULL;

CREATE OR REPLACE TEMP VIEW hooklake_handovers AS
SELECT
    conversation_id,
    channel_id,
    customer_id,
    _handover.agent_id,
    position,
    _handover.assigned_at,
    _handover.unassigned_at,
    _handover.first_agent_reply_at,
    _handover.first_agent_reply_at - _handover.assigned_at AS time_to_first_reply,
    _handover.source
FROM hooklake_index_rows
WHERE _handover.assigned_at IS NOT NULL;
