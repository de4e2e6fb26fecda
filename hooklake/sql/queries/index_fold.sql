-- One chunk of an index fold (index.py): the index's rows (both kinds) of the customers whose
-- ids fall in the chunk's range ({{customers}}), as one new base, in index order.
SELECT
    * EXCLUDE (kind),
    NULL::TIMESTAMPTZ AS _since,
    CAST($layer AS TINYINT) AS layer,
    CAST($generation AS VARCHAR) AS generation,
    kind
FROM hooklake_index_all
WHERE {{customers}}
ORDER BY channel_id, customer_id, _rn, kind DESC;
