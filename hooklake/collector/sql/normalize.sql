-- One row per message of the journaled bodies in `bodies`
-- (body, hook, received_at µs, source, sentry_trace, rec, n = number of messages), in the
-- column order of hooklake.layout.MESSAGE_SCHEMA, plus `rec` and `message_index`.
-- `ts` and `received_at` come out as epoch microseconds. A message whose timestamp or
-- customer id cannot be read comes out with NULL there; the caller sends it to the rejects.
--
-- Speed: every `->` parses its JSON again, so each document is parsed once with a list of
-- paths, and Landbot's usual one-message body skips unnesting altogether.
CREATE OR REPLACE TEMP MACRO hl_int(j) AS CASE json_type(j)
    WHEN 'BIGINT' THEN try_cast(j AS BIGINT)
    WHEN 'UBIGINT' THEN try_cast(j AS BIGINT)
    WHEN 'DOUBLE' THEN CASE WHEN try_cast(j AS DOUBLE) = floor(try_cast(j AS DOUBLE))
                            THEN try_cast(try_cast(j AS DOUBLE) AS BIGINT) END
    WHEN 'VARCHAR' THEN try_cast(trim(j ->> '$') AS BIGINT)
END;
CREATE OR REPLACE TEMP MACRO hl_str(j) AS CASE WHEN json_type(j) <> 'NULL' THEN j ->> '$' END;
-- For fields read from the first of several places: an empty string counts as absent.
CREATE OR REPLACE TEMP MACRO hl_text(j) AS nullif(hl_str(j), '');
CREATE OR REPLACE TEMP MACRO hl_obj(j) AS CASE WHEN json_type(j) = 'OBJECT' THEN j END;

CREATE OR REPLACE TEMP VIEW hl_messages AS
WITH src AS MATERIALIZED (
    SELECT hook, received_at, source, sentry_trace, rec, 0 AS i,
        json_extract(body, [
            '$.messages[0]', '$.messages[0].channel', '$.messages[0].customer',
            '$.messages[0].sender', '$.messages[0]._raw', '$.messages[0].data',
            '$.messages[0].timestamp', '$.messages[0].type', '$.messages[0].message',
            '$.messages[0].url', '$.channel', '$.customer', '$.agent'
        ]) AS x
    FROM bodies
    WHERE n = 1
    UNION ALL
    SELECT hook, received_at, source, sentry_trace, rec, i,
        list_concat(
            json_extract(m, ['$', '$.channel', '$.customer', '$.sender', '$._raw', '$.data',
                             '$.timestamp', '$.type', '$.message', '$.url']),
            json_extract(body, ['$.channel', '$.customer', '$.agent'])
        ) AS x
    FROM (
        SELECT *,
            unnest(CAST(body::JSON -> '$.messages' AS JSON[])) AS m,
            generate_subscripts(CAST(body::JSON -> '$.messages' AS JSON[]), 1) - 1 AS i
        FROM bodies
        WHERE n <> 1
    )
),
parts AS MATERIALIZED (
    SELECT *,
        x[1] AS m,
        coalesce(hl_obj(x[2]), hl_obj(x[11])) AS channel,
        coalesce(hl_obj(x[3]), hl_obj(x[12])) AS customer,
        hl_obj(x[4]) AS sender,
        hl_obj(x[13]) AS agent,
        hl_obj(x[5]) AS raw_,
        hl_obj(x[6]) AS data
    FROM src
),
fields AS MATERIALIZED (
    SELECT *,
        json_extract(channel, ['$.id', '$.name', '$.type']) AS ch,
        json_extract(customer, ['$.id', '$.agent_id']) AS cu,
        json_extract(coalesce(sender, agent), ['$.id', '$.type', '$.name']) AS se,
        json_extract(raw_, ['$.uuid', '$.chat', '$.seq', '$.message', '$.payload',
                            '$.extra.payload', '$.extra.action', '$.extra.url']) AS r,
        json_extract(data, ['$.body', '$.title', '$.caption', '$.payload', '$.action',
                            '$.url']) AS d
    FROM parts
)
SELECT
    coalesce(
        CASE WHEN json_type(r[1]) = 'VARCHAR' THEN hl_text(r[1]) END,
        'h:' || md5(json_array(
            x[2] -> '$.id', x[3] -> '$.id', x[7], x[4] -> '$.type', x[4] -> '$.id', x[8], x[6],
            r[4], x[9]
        )::VARCHAR)
    ) AS message_key,
    hook,
    hl_int(ch[1]) AS channel_id,
    hl_str(ch[2]) AS channel_name,
    coalesce(hl_str(ch[3]), CASE WHEN agent IS NOT NULL THEN 'apichat' END) AS channel_type,
    hl_int(cu[1]) AS customer_id,
    hl_int(r[2]) AS chat_id,
    CASE
        WHEN json_type(x[7]) = 'DOUBLE' THEN CAST(round(CAST(x[7] AS DOUBLE) * 1000000) AS BIGINT)
        WHEN json_type(x[7]) IN ('BIGINT', 'UBIGINT') THEN try_cast(x[7] AS BIGINT) * 1000000
    END AS ts,
    hl_int(r[3]) AS seq,
    hl_str(x[8]) AS type,
    CASE
        WHEN sender IS NOT NULL THEN hl_str(se[2])
        WHEN agent IS NOT NULL THEN CASE WHEN hl_str(se[2]) = 'bot' THEN 'bot' ELSE 'agent' END
    END AS sender_type,
    hl_int(se[1]) AS sender_id,
    hl_str(se[3]) AS sender_name,
    coalesce(hl_text(d[1]), hl_text(d[2]), hl_text(r[4]), hl_text(x[9]), hl_text(d[3])) AS text,
    coalesce(hl_text(d[4]), hl_text(r[6]), hl_text(r[5])) AS payload,
    coalesce(hl_text(d[5]), hl_text(r[7])) AS action,
    coalesce(hl_text(d[6]), hl_text(r[8]), hl_text(x[10])) AS url,
    hl_int(cu[2]) AS agent_id,
    CASE WHEN json_type(x[6]) <> 'NULL' THEN CAST(x[6] AS VARCHAR) END AS data,
    CAST(customer AS VARCHAR) AS customer,
    CAST(m AS VARCHAR) AS raw,
    sentry_trace,
    received_at,
    source || '#' || i AS source,
    rec,
    i AS message_index
FROM fields
