-- hooklake_explore_channels: one readable label per channel for the explore_* queries, e.g.
-- "Acme Store (Web)": the channel's latest name and its kind (Landbot's own widget is "Web").
-- A temporary view, defined on the Lake's connection before an explore query runs.
CREATE OR REPLACE TEMP VIEW hooklake_explore_channels AS
SELECT
    channel_id,
    concat(
        coalesce(arg_max(channel_name, started_at), concat('channel ', channel_id)),
        ' (',
        CASE arg_max(channel_type, started_at)
            WHEN 'landbot' THEN 'Web'
            WHEN 'whatsapp' THEN 'WhatsApp'
            WHEN 'facebook' THEN 'Messenger'
            ELSE coalesce(arg_max(channel_type, started_at), 'unknown')
        END,
        ')'
    ) AS channel
FROM conversations
GROUP BY channel_id;
