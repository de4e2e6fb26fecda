-- One chunk of an index fold (index.py): the index's rows of the customers whose ids fall in
-- the chunk's range ({{customers}}), as one new base, in index order.
SELECT
    *,
    NULL::TIMESTAMPTZ AS _since,
    CAST($layer AS TINYINT) AS layer,
    CAST($generation AS VARCHAR) AS generation
FROM hooklake_index_rows
WHERE {{customers}}
ORDER BY channel_id, customer_id, _rn;
