-- A rebuild recomputes every customer's whole stream: no spans (index_write.sql reads the spans
-- index_touched.sql finds for an update).
CREATE OR REPLACE TEMP TABLE hooklake_index_touched (
    channel_id BIGINT,
    customer_id BIGINT,
    since TIMESTAMPTZ,
    until TIMESTAMPTZ
);
