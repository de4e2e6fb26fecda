-- A rebuild's customers continue no stored rows: every stream is recomputed from its first
-- message (index_write.sql reads the points index_touched.sql finds for an update).
CREATE OR REPLACE TEMP TABLE hooklake_index_touched (
    channel_id BIGINT,
    customer_id BIGINT,
    since TIMESTAMPTZ,
    anchor_rn BIGINT,
    rn_offset BIGINT,
    run_offset BIGINT
);
