-- hooklake_message_rows for one chunk of an index rebuild (index/rebuild.py): the stored rows of the
-- customer streams in the chunk's range ({{streams}}, a condition on channel_id and
-- customer_id). Every view computes each customer from that customer's rows alone, so chunks
-- by customer give exactly the rows of the whole, with memory bounded by the chunk.
CREATE OR REPLACE TEMP VIEW hooklake_message_rows AS
SELECT * FROM hooklake_message_files WHERE {{streams}};
