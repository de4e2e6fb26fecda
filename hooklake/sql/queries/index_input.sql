-- An index update's input (index/recompute.py): the stored rows of the spans index_touched.sql found, from
-- hooklake_index_stored (the index's message rows, or the few of them the update located:
-- index_located.sql), plus the new rows; hooklake_message_rows redefined as that input, so the
-- views' own SQL recomputes exactly that much. {{touched}} narrows the scan to the touched
-- customers (see index_touched.sql); the join with the spans picks their rows.

-- Materialised: the views below read these rows many times, and they are few.
CREATE OR REPLACE TEMP TABLE hooklake_index_input AS
SELECT i.* EXCLUDE (
    role, _agent_evidence, _rn, _started_at, _run, conversation_id, position, _conversation,
    _turn, _handover, _shown
)
FROM hooklake_index_stored AS i
JOIN hooklake_index_touched AS t
    ON t.channel_id IS NOT DISTINCT FROM i.channel_id
    AND t.customer_id = i.customer_id
    AND i.ts >= t.since
    AND i.ts < coalesce(t.until, 'infinity'::TIMESTAMPTZ)
WHERE {{touched}}
UNION ALL BY NAME
SELECT * FROM hooklake_index_new_rows;

CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT * FROM hooklake_index_input;
