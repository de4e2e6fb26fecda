-- The cut-off of an incremental build and the conversations it must leave for later. The
-- cut-off is the newest message in the lake minus the recipe's gap ($gap_us, microseconds);
-- a conversation with a message at or after it could still grow (its customer's next message
-- would join it), so it is open; every other conversation is closed.
-- One row per open conversation, and one row with a NULL conversation_id carrying the cut-off.
WITH m AS (
    SELECT conversation_id, ts FROM messages
),
cut AS (
    SELECT max(ts) - to_microseconds($gap_us::BIGINT) AS cutoff FROM m
)
SELECT NULL::VARCHAR AS conversation_id, (SELECT cutoff FROM cut) AS cutoff
UNION ALL
SELECT DISTINCT conversation_id, NULL AS cutoff
FROM m
WHERE ts >= (SELECT cutoff FROM cut)
ORDER BY conversation_id NULLS FIRST;
