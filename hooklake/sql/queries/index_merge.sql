-- An index merge (index/update.py): the newest increments (hooklake_index_newer, index_rows.sql) as
-- one increment, in index order: the rows readers take from them, each with the span it was
-- computed for. The merged increment holds the same spans as those it replaces, with the rows
-- readers took there, so readers see the same rows.
SELECT
    * EXCLUDE (layer, generation, kind),
    CAST($layer AS TINYINT) AS layer,
    CAST($generation AS VARCHAR) AS generation,
    kind
FROM hooklake_index_newer_rows
ORDER BY channel_id, customer_id, _started_at, position, kind DESC;
