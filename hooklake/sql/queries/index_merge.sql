-- An index merge (index.py): the newest increments (hooklake_index_newer, index_rows.sql) as
-- one increment, in index order. A customer's rows are those readers take from these
-- increments (a generation's rows count up to the earliest point of the customer's newer
-- ones), and all carry the customer's earliest point among them: from that point on, readers
-- took every row of the customer from these increments, so the merged one stands in for them
-- and readers see the same rows.
WITH points AS (
    SELECT channel_id, customer_id, min(coalesce(since, '-infinity'::TIMESTAMPTZ)) AS since
    FROM hooklake_index_cuts
    GROUP BY channel_id, customer_id
)
SELECT
    n.* EXCLUDE (_since, layer, generation, kind),
    CASE WHEN p.since <> '-infinity'::TIMESTAMPTZ THEN p.since END AS _since,
    CAST($layer AS TINYINT) AS layer,
    CAST($generation AS VARCHAR) AS generation,
    n.kind
FROM hooklake_index_newer AS n
JOIN hooklake_index_cuts AS c
    ON c.channel_id IS NOT DISTINCT FROM n.channel_id
    AND c.customer_id = n.customer_id
    AND c.generation = n.generation
JOIN points AS p
    ON p.channel_id IS NOT DISTINCT FROM n.channel_id
    AND p.customer_id = n.customer_id
WHERE c.until IS NULL OR n.ts < c.until
ORDER BY n.channel_id, n.customer_id, n._rn, n.kind DESC;
