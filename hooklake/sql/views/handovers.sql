-- handovers: one row per hand-off to a human agent (hooklake_handovers: computed by
-- handover_rows.sql, or read from the conversation index by index_summaries.sql).
CREATE OR REPLACE TEMP VIEW handovers AS
SELECT * FROM hooklake_handovers;
