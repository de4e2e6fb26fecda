-- hooklake_turn_pairs, what the turn_pairs view shows: each customer turn with the turn that
-- answers it, the next turn of its conversation (turns alternate roles, so that is always an
-- assistant turn). has_agent: a human agent wrote part of the answer.
CREATE OR REPLACE TEMP VIEW hooklake_turn_pairs AS
SELECT conversation_id, turn_index, prompt, response, has_agent
FROM (
    SELECT
        conversation_id,
        turn_index,
        role,
        text AS prompt,
        lead(text) OVER next AS response,
        lead(has_agent) OVER next AS has_agent
    FROM hooklake_turns
    WINDOW next AS (PARTITION BY conversation_id ORDER BY turn_index)
)
WHERE role = 'user' AND has_agent IS NOT NULL;
