-- A lake with no reject files yet: the same columns, no rows.
CREATE OR REPLACE TEMP VIEW hooklake_rejected_rows AS
SELECT *, NULL::DATE AS date
FROM hooklake_empty_rejected;
