-- hooklake_turns_answered: hooklake_turns with, on each customer turn, the turn that answers
-- it, the next turn of its conversation (turns alternate roles, so that is always an assistant
-- turn): its text and whether a human agent wrote part of it. Index writes store these on the
-- customer turn (queries/index_write.sql).
CREATE OR REPLACE TEMP VIEW hooklake_turns_answered AS
SELECT
    *,
    CASE WHEN role = 'user' THEN lead(text) OVER next END AS response,
    CASE WHEN role = 'user' THEN lead(has_agent) OVER next END AS response_has_agent
FROM hooklake_turns
WINDOW next AS (PARTITION BY conversation_id ORDER BY turn_index);

-- hooklake_turn_pairs, what the turn_pairs view shows: each customer turn with its answer.
CREATE OR REPLACE TEMP VIEW hooklake_turn_pairs AS
SELECT conversation_id, turn_index, text AS prompt, response, response_has_agent AS has_agent
FROM hooklake_turns_answered
WHERE response_has_agent IS NOT NULL;
