-- {{view}} when no file of its kind exists yet: the same columns, no rows. The Lake registers an
-- empty Arrow table of the schema as {{view}}_schema (read_parquet cannot take an empty list).
CREATE OR REPLACE TEMP VIEW {{view}} AS
SELECT *, NULL::DATE AS date
FROM {{view}}_schema;
