-- turns: consecutive messages of the same role in a conversation, merged (hooklake_turns:
-- computed by turn_rows.sql, or read from the conversation index by index_summaries.sql).
CREATE OR REPLACE TEMP VIEW turns AS
SELECT * FROM hooklake_turns;
