-- Stored reject rows.
CREATE OR REPLACE TEMP VIEW hooklake_rejected_rows AS
SELECT * FROM hooklake_rejected_files;
