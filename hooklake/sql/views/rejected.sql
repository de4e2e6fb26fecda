-- rejected: one row per rejected body (message_index null) or rejected message of a body.
-- body is the raw bytes as received; body_text is the same decoded as UTF-8 where valid.
CREATE OR REPLACE TEMP VIEW rejected AS
SELECT
    received_at,
    hook,
    reason,
    message_index,
    body,
    TRY(decode(body)) AS body_text,
    headers,
    source,
    date
FROM hooklake_rejected_rows;
