-- An index update's input (index.py): the customers that new stored rows touch, and
-- hooklake_message_rows redefined as those customers' rows only, from the index (already
-- deduplicated: the earliest arrival of each key so far) and from the new rows. The views'
-- own SQL then recomputes exactly those customers.
--
-- hooklake_index_added: rows of the data files the messages table gained;
-- hooklake_index_removed: rows of the files it lost. A compaction removes files and adds the
-- same rows in new ones, so rows found among the removed ones are not new.
CREATE OR REPLACE TEMP TABLE hooklake_index_new_rows AS
SELECT a.*
FROM hooklake_index_added AS a
WHERE NOT EXISTS (
    SELECT 1
    FROM hooklake_index_removed AS r
    WHERE r.message_key = a.message_key
      AND r.received_at = a.received_at
      AND r.source = a.source
);

CREATE OR REPLACE TEMP TABLE hooklake_index_touched AS
SELECT DISTINCT channel_id, customer_id
FROM hooklake_index_new_rows;

CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT i.* EXCLUDE (
    role, _agent_evidence, _rn, _started_at, _run, conversation_id, position, _conversation, _turn,
    _handover
)
FROM hooklake_index_rows AS i
WHERE EXISTS (
    SELECT 1
    FROM hooklake_index_touched AS t
    WHERE t.channel_id IS NOT DISTINCT FROM i.channel_id
      AND t.customer_id IS NOT DISTINCT FROM i.customer_id
)
UNION ALL BY NAME
SELECT * FROM hooklake_index_new_rows;
