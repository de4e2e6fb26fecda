-- Where a build through the conversation index cuts the lake into ranges of conversation ids
-- (build_messages_indexed.sql reads one range at a time): $count ranges (INTEGER) holding about
-- as many messages each. One row, one list of the ids each range after the first starts at,
-- ascending (NULL when there are no conversations).
--
-- From the index's conversation rows, one per conversation with its message count, not from
-- every message's id: at 4M messages that sorts 240k ids instead of 3.5M, and the memory
-- DuckDB takes for it (which stays with the process) is a fifth.
WITH running AS (
    SELECT
        conversation_id,
        sum(n_messages) OVER (ORDER BY conversation_id ROWS UNBOUNDED PRECEDING)
            - n_messages AS before,
        sum(n_messages) OVER () AS total
    FROM hooklake_conversation_counts
)
SELECT list(bound ORDER BY bound) AS bounds
FROM (
    SELECT min(conversation_id) AS bound, floor(before * $count::INTEGER / total) AS part
    FROM running
    GROUP BY part
    HAVING part > 0
);
