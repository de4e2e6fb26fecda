-- One chunk of an index fold (index/update.py): the index's rows (both kinds) of the customer streams
-- in the chunk's range ({{streams}}), as one new base, in index order.
SELECT
    * EXCLUDE (kind),
    NULL::TIMESTAMPTZ AS _since,
    NULL::TIMESTAMPTZ AS _until,
    CAST($layer AS TINYINT) AS layer,
    CAST($generation AS VARCHAR) AS generation,
    kind
FROM hooklake_index_all
WHERE {{streams}}
ORDER BY channel_id, customer_id, _started_at, position, kind DESC;
