-- What the newer generations of the index (hooklake_index_newer: index_newer.sql, or none:
-- index_base_rows.sql) hold, for index_rows.sql's resolution and an update's located read
-- (queries/index_located.sql).

-- Per customer, the spans the newer generations hold: one per span an update recomputed since
-- the last fold, fewer once merged (a span whose rows newer ones all replaced is gone).
-- Computed once, when the views are defined, into a table of a row per touched customer: as a
-- view, every query grouped the increments' rows again (a point query through 62 increment
-- files of a 1M-message index: 44 ms, against 23 ms from the table), and every view defined
-- on top of it took longer to bind. Read from the conversation rows alone, a fourteenth of the
-- rows: a span is recomputed from a conversation's start, so each holds the conversation row of
-- every conversation in it, carrying the span as their messages' rows do.
CREATE OR REPLACE TEMP TABLE hooklake_index_spans_once AS
SELECT
    channel_id,
    customer_id,
    list({
        'generation': generation,
        'since': coalesce(_since, '-infinity'::TIMESTAMPTZ),
        'until': coalesce(_until, 'infinity'::TIMESTAMPTZ)
    }) AS spans
FROM (
    SELECT DISTINCT channel_id, customer_id, generation, _since, _until
    FROM hooklake_index_newer
    WHERE kind = 'conversation'
)
GROUP BY channel_id, customer_id;

CREATE OR REPLACE TEMP VIEW hooklake_index_spans AS
SELECT * FROM hooklake_index_spans_once;

-- The newer generations' rows that count, with their spans (index_merge.sql keeps them).
CREATE OR REPLACE TEMP VIEW hooklake_index_newer_rows AS
SELECT n.*
FROM hooklake_index_newer AS n
JOIN hooklake_index_spans AS c
    ON c.channel_id IS NOT DISTINCT FROM n.channel_id
    AND c.customer_id = n.customer_id
WHERE NOT list_bool_or(list_transform(
    c.spans, lambda s: s.generation > n.generation AND n.ts >= s.since AND n.ts < s.until
));
