-- A lake with no message files yet: the same columns, no rows. The Lake registers an empty
-- Arrow table of the stored schema as hooklake_empty_messages.
CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT *, NULL::DATE AS date
FROM hooklake_empty_messages;
