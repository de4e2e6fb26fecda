-- One row per message of the journaled bodies in `bodies`
-- (body, hook, received_at µs, source, sentry_trace, rec), in the column order of
-- hooklake.layout.MESSAGE_SCHEMA, plus `rec` and `message_index`. `ts` and `received_at`
-- come out as epoch microseconds. A message whose timestamp or customer id cannot be read
-- comes out with NULL there; the caller sends it to the rejects.
--
-- Speed: each document is parsed once into typed structs (from_json), never path by path.
-- from_json is lenient: a value of the wrong type becomes NULL instead of failing the batch;
-- the collector's request check (normalize.py) has already refused what matters.
CREATE OR REPLACE TEMP VIEW hl_messages AS
WITH envelopes AS (
    SELECT hook, received_at, source, sentry_trace, rec,
        from_json(body, '{
            "messages": ["JSON"],
            "channel": {"id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR"},
            "customer": "JSON",
            "agent": {"id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR"}
        }') AS env
    FROM bodies
),
messages AS (
    SELECT hook, received_at, source, sentry_trace, rec, env,
        unnest(env.messages) AS raw,
        generate_subscripts(env.messages, 1) - 1 AS message_index
    FROM envelopes
),
parsed AS (
    SELECT *,
        from_json(raw, '{
            "type": "VARCHAR", "timestamp": "DOUBLE", "message": "VARCHAR", "url": "VARCHAR",
            "data": "JSON", "customer": "JSON",
            "channel": {"id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR"},
            "sender": {"id": "BIGINT", "name": "VARCHAR", "type": "VARCHAR"},
            "_raw": {"uuid": "VARCHAR", "chat": "BIGINT", "seq": "BIGINT", "message": "VARCHAR",
                     "payload": "VARCHAR",
                     "extra": {"payload": "VARCHAR", "action": "VARCHAR", "url": "VARCHAR"}}
        }') AS m
    FROM messages
),
parts AS (
    SELECT *,
        coalesce(nullif(m.customer, 'null'), nullif(env.customer, 'null')) AS customer_json,
        from_json(nullif(m.data, 'null'), '{
            "body": "VARCHAR", "title": "VARCHAR", "caption": "VARCHAR", "payload": "VARCHAR",
            "action": "VARCHAR", "url": "VARCHAR"
        }') AS d,
        m.sender.type IS NULL AND env.agent.id IS NOT NULL AS apichat
    FROM parsed
),
rows AS (
    SELECT *,
        from_json(customer_json, '{"id": "BIGINT", "agent_id": "BIGINT"}') AS c,
        coalesce(m.channel.id, env.channel.id) AS channel_id,
        CASE WHEN apichat THEN CASE WHEN env.agent.type = 'bot' THEN 'bot' ELSE 'agent' END
             ELSE m.sender.type END AS sender_type,
        CASE WHEN apichat THEN env.agent.id ELSE m.sender.id END AS sender_id,
        CASE WHEN apichat THEN env.agent.name ELSE m.sender.name END AS sender_name,
        CAST(round(m.timestamp * 1000000) AS BIGINT) AS ts,
        coalesce(nullif(d.body, ''), nullif(d.title, ''), nullif(m._raw.message, ''),
                 nullif(m.message, ''), nullif(d.caption, '')) AS text,
        coalesce(nullif(d.payload, ''), nullif(m._raw.extra.payload, ''),
                 nullif(m._raw.payload, '')) AS payload,
        coalesce(nullif(d.action, ''), nullif(m._raw.extra.action, '')) AS action,
        coalesce(nullif(d.url, ''), nullif(m._raw.extra.url, ''), nullif(m.url, '')) AS url
    FROM parts
)
SELECT
    -- Without a uuid (older payloads, APIchat): a hash of what a retry repeats, field by field
    -- so that key order and whitespace in a re-saved body do not matter.
    coalesce(
        nullif(m._raw.uuid, ''),
        'h:' || md5(concat_ws(chr(31), channel_id, c.id, ts, sender_type, sender_id, m.type,
                              text, payload, action, url))
    ) AS message_key,
    hook,
    channel_id,
    coalesce(m.channel.name, env.channel.name) AS channel_name,
    coalesce(m.channel.type, env.channel.type, CASE WHEN apichat THEN 'apichat' END)
        AS channel_type,
    c.id AS customer_id,
    m._raw.chat AS chat_id,
    ts,
    m._raw.seq AS seq,
    m.type AS type,
    sender_type,
    sender_id,
    sender_name,
    text,
    payload,
    action,
    url,
    c.agent_id AS agent_id,
    CAST(nullif(m.data, 'null') AS VARCHAR) AS data,
    CAST(customer_json AS VARCHAR) AS customer,
    CAST(raw AS VARCHAR) AS raw,
    sentry_trace,
    received_at,
    source || '#' || message_index AS source,
    rec,
    message_index
FROM rows
