-- turn_pairs: each customer turn (prompt) with the assistant turn that answers it (response),
-- for prompt/response analysis and exports (hooklake_turn_pairs: computed by
-- turn_pair_rows.sql, or read from the conversation index by index_summaries.sql).
CREATE OR REPLACE TEMP VIEW turn_pairs AS
SELECT * FROM hooklake_turn_pairs;
