-- Stored message rows, duplicates included. Files written by Hooklake 0.1 (schema version 1)
-- lack the columns version 2 added (samurai, latitude, longitude): they read as NULL there.
CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT * FROM hooklake_message_files_v2
UNION ALL BY NAME
SELECT * FROM hooklake_message_files_v1;
