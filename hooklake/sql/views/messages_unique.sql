-- hooklake_messages_unique: the stored rows (hooklake_message_rows) without repeated deliveries.
-- A message is one customer's: deduplicate by (channel_id, customer_id, message_key), keeping
-- the earliest arrival (ties: source). Keeping the key inside the customer's stream is what
-- lets the conversation index (hooklake/index) recompute one customer at a time and agree with this
-- view over the whole lake.
-- The hooklake_* views are internal building blocks; query messages, conversations, turns,
-- handovers and rejected.

-- Keys delivered more than once. Grouping by a 64-bit hash of (channel, customer, key) is much
-- cheaper than by the values themselves; a collision only sends a few more rows through the
-- exact path below.
CREATE OR REPLACE TEMP VIEW hooklake_messages_unique AS
WITH repeated AS MATERIALIZED (
    SELECT hash(channel_id, customer_id, message_key) AS h
    FROM hooklake_message_rows
    GROUP BY h
    HAVING count(*) > 1
)
SELECT *
FROM hooklake_message_rows
WHERE hash(channel_id, customer_id, message_key) NOT IN (SELECT h FROM repeated)
UNION ALL
(
    SELECT *
    FROM hooklake_message_rows
    WHERE hash(channel_id, customer_id, message_key) IN (SELECT h FROM repeated)
    QUALIFY row_number() OVER (
        PARTITION BY channel_id, customer_id, message_key ORDER BY received_at, source
    ) = 1
);
